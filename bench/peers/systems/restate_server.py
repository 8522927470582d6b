"""A Restate server for one run: the ``restate-server`` binary from npm (bench/peers/setup.sh restate),
its shipped configuration, every port on 127.0.0.1 and picked free, its data in a fresh temporary
folder; started and stopped within bounded times. Standard library only."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
BINARY_ENV = "RESTATE_SERVER_BIN"


@dataclass(frozen=True)
class Server:
    ingress_url: str
    admin_url: str
    log: Path


def binary() -> str | None:
    """$RESTATE_SERVER_BIN, or where setup.sh installs it (beside the peers' venv), or on PATH."""
    if os.environ.get(BINARY_ENV):
        return os.environ[BINARY_ENV]
    venv = Path(sys.prefix)
    installed = venv / "restate-server" / "node_modules" / ".bin" / "restate-server"
    return str(installed) if installed.exists() else shutil.which("restate-server")


def version() -> str:
    answer = subprocess.run([str(binary()), "--version"], capture_output=True, text=True, timeout=30)
    return answer.stdout.strip().removeprefix("restate-server").strip() or "unknown"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running(log_dir: Path | None = None) -> Iterator[Server]:
    """A fresh server, ready for deployments and invocations; stopped (and its data removed) after."""
    ingress, admin, fabric = free_port(), free_port(), free_port()
    env = {**os.environ, "RESTATE_BIND_IP": HOST, "RESTATE_BIND_PORT": str(fabric),
           "RESTATE_INGRESS__BIND_PORT": str(ingress), "RESTATE_ADMIN__BIND_PORT": str(admin),
           "RESTATE_LISTEN_MODE": "tcp",
           # No report home: this machine reaches no outside address, and the run is not a user.
           "RESTATE_DISABLE_TELEMETRY": "true", "RESTATE_LOG_DISABLE_ANSI_CODES": "true"}
    with tempfile.TemporaryDirectory(prefix="restate-bench-") as folder:
        log = (log_dir or Path(folder)) / "restate-server.log"
        with log.open("w") as sink:
            process = subprocess.Popen([str(binary()), "--no-logo", "--base-dir", str(Path(folder) / "data")],
                                       env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
            try:
                server = Server(f"http://{HOST}:{ingress}", f"http://{HOST}:{admin}", log)
                _wait_ready(server, process)
                yield server
            except BaseException:
                print(f"restate-server log, last lines:\n{_tail(log)}", file=sys.stderr, flush=True)
                raise
            finally:
                _stop(process)


def _tail(log: Path, lines: int = 20) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def _wait_ready(server: Server, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"restate-server exited with {process.returncode} at start (log: {server.log})")
        if _ok(f"{server.admin_url}/health") and _ok(f"{server.ingress_url}/restate/health"):
            return
        time.sleep(0.2)
    raise RuntimeError(f"restate-server not ready within {START_TIMEOUT_S:.0f} s (log: {server.log})")


def _ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return bool(answer.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)  # npm's launcher passes it on to the server it started
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the launcher and the server: the group this run started
        process.wait(timeout=10)


def register(server: Server, service_uri: str) -> dict[str, object]:
    """POST /deployments on the admin API: the server discovers the service's handlers at service_uri."""
    body = json.dumps({"uri": service_uri}).encode()
    request = urllib.request.Request(f"{server.admin_url}/deployments", data=body, method="POST",
                                     headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        found: dict[str, object] = json.loads(answer.read())
    return found
