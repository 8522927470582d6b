"""Redis with a password, an ACL user, and TLS (rediss:// with a CA), on redis-servers of the tests' own.

One server (loopback port 6391) has ``requirepass`` and an ACL user; another (6392) speaks
only TLS, with a certificate from a CA made here by openssl. Errors never carry a password.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pulsarflow.errors import BackendError
from pulsarflow.storage import Versioned
from pulsarflow.storage.redis import RedisStateStore
from tests.redis.support import absent

PASSWORD = "p@ss:w/rd"  # characters that must be percent-encoded in a URL
ENCODED = "p%40ss%3Aw%2Frd"
ACL_USER, ACL_PASSWORD = "engine", "engine-s3cret"
PLAIN_PORT, TLS_PORT = 6391, 6392


def _wait_port(port: int, process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            absent(f"redis-server on port {port} exited: {process.stderr.read().decode()[-500:]}")  # type: ignore[union-attr]
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    absent(f"redis-server did not listen on 127.0.0.1:{port}")


def _server(*args: str) -> Iterator[None]:
    binary = shutil.which("redis-server")
    if binary is None:
        absent("redis-server is not installed; run: deploy/redis.sh install")
    process = subprocess.Popen([str(binary), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", *args],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    port = int(args[args.index("--tls-port") + 1] if "--tls-port" in args else args[args.index("--port") + 1])
    try:
        _wait_port(port, process)
        yield
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def protected() -> Iterator[None]:
    yield from _server("--port", str(PLAIN_PORT), "--requirepass", PASSWORD,
                       "--user", f"{ACL_USER}", "on", f">{ACL_PASSWORD}", "~pulsarflow:*", "+@all")


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("openssl") is None:
        absent("openssl is not installed")
    folder = tmp_path_factory.mktemp("redis-tls")

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    for ca in ("ca", "other-ca"):
        run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN=test {ca}",
            "-keyout", f"{ca}.key", "-out", f"{ca}.pem")
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", "server.key", "-out", "server.csr")
    (folder / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
        "-extfile", "san.ext", "-out", "server.pem")
    return folder


@pytest.fixture(scope="module")
def tls(certs: Path) -> Iterator[Path]:
    for _ in _server("--port", "0", "--tls-port", str(TLS_PORT), "--tls-cert-file", str(certs / "server.pem"),
                     "--tls-key-file", str(certs / "server.key"), "--tls-ca-cert-file", str(certs / "ca.pem"),
                     "--tls-auth-clients", "no", "--requirepass", PASSWORD):
        yield certs


def roundtrip(url: str) -> None:
    store = RedisStateStore.from_url(url, prefix="pulsarflow:auth-test:", timeout_s=2)
    try:
        version = store.put("k", b"value", (store.get("k") or _zero()).version)
        assert store.get("k") is not None and store.get("k").value == b"value"  # type: ignore[union-attr]
        assert version >= 1
    finally:
        store.close()


def _zero() -> Versioned:
    return Versioned(b"", 0)


def test_a_password_and_an_acl_user_work(protected: None) -> None:
    roundtrip(f"redis://:{ENCODED}@127.0.0.1:{PLAIN_PORT}/0")
    roundtrip(f"redis://{ACL_USER}:{ACL_PASSWORD}@127.0.0.1:{PLAIN_PORT}/0")
    roundtrip(f"redis://127.0.0.1:{PLAIN_PORT}/0?password={ENCODED}")


@pytest.mark.parametrize("url", [
    f"redis://:wrong-s3cret@127.0.0.1:{PLAIN_PORT}/0",
    f"redis://{ACL_USER}:wrong-s3cret@127.0.0.1:{PLAIN_PORT}/0",
    f"redis://127.0.0.1:{PLAIN_PORT}/0?password=wrong-s3cret",
    f"redis://127.0.0.1:{PLAIN_PORT}/0",
])
def test_wrong_credentials_say_so_without_the_password(protected: None, url: str) -> None:
    began = time.monotonic()
    with pytest.raises(BackendError) as caught:
        roundtrip(url)
    message = str(caught.value)
    assert "refused the credentials" in message and "redis_url" in message, message
    assert "wrong-s3cret" not in message
    assert time.monotonic() - began < 10


def test_rediss_with_the_ca_works_and_a_wrong_ca_is_named(tls: Path) -> None:
    roundtrip(f"rediss://:{ENCODED}@127.0.0.1:{TLS_PORT}/0?ssl_ca_certs={tls / 'ca.pem'}")
    roundtrip(f"rediss://:{ENCODED}@localhost:{TLS_PORT}/0?ssl_ca_certs={tls / 'ca.pem'}")
    with pytest.raises(BackendError) as caught:
        roundtrip(f"rediss://:{ENCODED}@127.0.0.1:{TLS_PORT}/0?ssl_ca_certs={tls / 'other-ca.pem'}")
    message = str(caught.value)
    assert "certificate verify failed" in message and "ssl_ca_certs" in message, message
    assert ENCODED not in message and PASSWORD not in message
