"""Finding the Redis the tests use (deploy/redis.sh start), or a private redis-server.

Locally, Redis tests skip when no server answers; under CI=true they fail instead.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


def absent(message: str) -> None:
    """Skip locally; fail under CI=true, where the server must be there."""
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def require_redis() -> str:
    """The URL of a Redis that answers PING."""
    try:
        import redis
    except ImportError:
        absent("redis-py is missing: pip install -e '.[redis]'")
    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        client.ping()
        client.close()
    except redis.RedisError as exc:
        absent(f"no Redis at {REDIS_URL} ({exc}); start one: deploy/redis.sh start")
    return REDIS_URL


def unique_prefix(label: str) -> str:
    return f"pulsarflow-test:{label}:{uuid.uuid4().hex[:8]}:"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateRedis:
    """A redis-server of the test's own (append-only persistence on), to stop and restart at will."""

    def __init__(self, data_dir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            absent("redis-server is not installed; run: deploy/redis.sh install")
        self.binary = str(binary)
        self.data_dir = data_dir
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.data_dir),
             "--appendonly", "yes", "--appendfsync", "always", "--save", ""],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {self.port} did not start")

    def stop(self) -> None:
        """Graceful stop: Redis flushes its append-only file before it exits."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=20)
            self.process = None

    def kill(self) -> None:
        """A crash: SIGKILL, nothing flushed beyond what appendfsync always already wrote."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=20)
            self.process = None
