"""What the fault benchmark (bench/faults.py) runs its faults against: a deployed app, a load
of journaling workflows whose answers are timed, and a redis-server of its own."""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pulsarflow.deploy import manifest as mf
from pulsarflow.deploy import tool
from pulsarflow.deploy.admin import PulsarAdmin
from pulsarflow.messages import GetWorkflowResult
from pulsarflow.pulsar.worker import connect
from tests.integration import fault_flows

MODULE = "tests.integration.fault_flows"
QUIET_S = 20  # answers silent this long: ask the silent workflows for their result again


def journal_entries(journal: Path) -> list[dict[str, Any]]:
    if not journal.exists():
        return []
    lines = journal.read_bytes().split(b"\n")[:-1]  # the last one may be a line still being written
    return [json.loads(line) for line in lines if line]


@contextlib.contextmanager
def deployed(args: argparse.Namespace, work: Path, redis_url: str | None = None,
             outcomes: str = "on") -> Iterator[tuple[mf.Manifest, Any]]:
    """The workflow engine and the 'faults' executor under a fresh app name, and a warmed-up client."""
    admin = PulsarAdmin(args.admin_url)
    app = f"faults{uuid.uuid4().hex[:6]}"
    executor_config = {"outcomes": "off"} if outcomes == "off" else {}
    raw: dict[str, Any] = {"app": app, "modules": [MODULE], "bundle_library": False, "functions": [
        {"name": f"{app}-workflow-engine", "engine": "workflow", "batch": args.batch},
        {"name": f"{app}-executor-faults", "engine": "executor", "service": fault_flows.SERVICE,
         "batch": args.batch, "config": executor_config}]}
    if redis_url is not None:
        raw.update({"state": "redis", "redis_url": redis_url})
    manifest = mf.parse(raw)
    tool.apply(admin, manifest, work / app)
    client = connect(args.service_url, modules=[MODULE], topics=manifest.topics)
    try:
        # Warm-up: the functions run and the producers are connected before the load starts.
        client.start(fault_flows.chain, str(work / "warmup.jsonl"), 1, 0.0).result(timeout=120)
        yield manifest, client
    finally:
        client.close()
        for spec in manifest.functions:
            try:
                admin.delete_function(manifest.topics.tenant, manifest.topics.namespace, spec.name)
            except Exception as error:  # a failed clean-up must not hide the figures
                print(f"# could not delete {spec.name}: {error}", flush=True)


class Load:
    """Workflows started by one client, and when each answered."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.requests: dict[str, Any] = {}
        self.answered: dict[str, float] = {}
        self.lock = threading.Lock()
        client.add_answer_listener(self._on_answer)

    def _on_answer(self, answer: Any) -> None:
        with self.lock:
            if answer.request_id in self.requests:
                self.answered.setdefault(answer.request_id, time.time())

    def start(self, prefix: str, count: int, journal: Path, steps: int, step_seconds: float) -> None:
        for i in range(count):
            handle = self.client.start(fault_flows.chain, str(journal), steps, step_seconds,
                                       id=f"{prefix}-{i}-{uuid.uuid4().hex[:8]}")
            with self.lock:
                self.requests[handle.request_id] = handle

    def wait(self, deadline_s: float, since: float) -> None:
        """Until every workflow answered or ``deadline_s`` passed; silent ones are asked again."""
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            with self.lock:
                silent = [r for r in self.requests if r not in self.answered]
                last = max(self.answered.values(), default=since)
            if not silent:
                return
            if time.time() - max(last, since) > QUIET_S:
                for request_id in silent:
                    with self.lock:
                        handle = self.requests.pop(request_id)
                    reply = self.client._reply_to()
                    with self.lock:
                        self.requests[reply.request_id] = handle
                    self.client._send(handle.id, GetWorkflowResult(reply))
                since = time.time()
            time.sleep(0.2)

    def lost(self) -> int:
        with self.lock:
            return sum(1 for r in self.requests if r not in self.answered)

    def first_answer_after(self, at: float) -> float | None:
        with self.lock:
            after = [t for t in self.answered.values() if t >= at]
        return round(min(after) - at, 2) if after else None

    def all_done_after(self, at: float) -> float | None:
        with self.lock:
            if any(r not in self.answered for r in self.requests):
                return None
            return round(max(self.answered.values()) - at, 2)


class RedisServer:
    """A redis-server of the benchmark's own (never the shared one), with an append-only file."""

    def __init__(self, port: int, folder: Path) -> None:
        self.port, self.folder = port, folder
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        if shutil.which("redis-server") is None:
            raise RuntimeError("the redis case needs redis-server on PATH (apt-get install redis-server)")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
             "--appendonly", "yes", "--appendfsync", "everysec", "--save", ""],
            stdout=(self.folder / "redis.log").open("ab"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2) as s:
                s.sendall(b"PING\r\n")
                if s.recv(64).startswith(b"+PONG"):  # -LOADING while the append-only file is read
                    return f"redis://127.0.0.1:{self.port}/0"
            time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {self.port} did not start; see {self.folder / 'redis.log'}")

    def kill(self) -> float:
        assert self.process is not None
        killed_at = time.time()
        self.process.kill()  # SIGKILL
        self.process.wait()
        return killed_at

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
