"""The dashboard's guards, each shown with a crafted request over real HTTP (pulsarflow.dashboard.server)."""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

import pulsarflow as pf
from pulsarflow.dashboard.embedded import EmbeddedDashboard
from pulsarflow.dashboard.server import MAX_BODY, DashboardServer, is_loopback
from tests.e2e import flows


def send(board: Any, method: str, path: str, headers: dict[str, str] | None = None, body: bytes | None = None,
         host: str | None = None) -> tuple[int, dict[str, str], Any]:
    """One request with exactly the given headers (Host and Content-Length included: none is added)."""
    address = board.url.removeprefix("http://")
    name, port = address.rsplit(":", 1)
    connection = http.client.HTTPConnection(name, int(port), timeout=10)
    try:
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        connection.putheader("Host", host if host is not None else address)
        for key, value in (headers or {}).items():
            connection.putheader(key, value)
        connection.endheaders(body)
        response = connection.getresponse()
        raw = response.read()
        kind = response.getheader("Content-Type") or ""
        return response.status, dict(response.getheaders()), json.loads(raw) if "json" in kind else raw
    finally:
        connection.close()


def post(board: EmbeddedDashboard, path: str, body: dict[str, Any], host: str | None = None,
         **headers: str) -> tuple[int, dict[str, str], Any]:
    """A well-formed action with the token; a header given as "-" is left out."""
    data = json.dumps(body).encode()
    base = {"Content-Type": "application/json", "Content-Length": str(len(data)),
            "Authorization": f"Bearer {board.token}"}
    base.update({k.replace("_", "-"): v for k, v in headers.items()})
    return send(board, "POST", path, {k: v for k, v in base.items() if v != "-"}, data, host=host)


@pytest.fixture
def running(dashboard: EmbeddedDashboard) -> EmbeddedDashboard:
    with dashboard.lock:
        dashboard.env.client().start(flows.approval, 3600, id="guarded")
    return dashboard


def status_of(board: EmbeddedDashboard, workflow_id: str) -> str:
    deadline = time.monotonic() + 10
    while True:
        code, _, body = send(board, "GET", f"/api/workflow?id={workflow_id}")
        if code == 200 or time.monotonic() > deadline:
            return str(body["workflow"]["status"]) if code == 200 else f"HTTP {code}"
        time.sleep(0.05)


def test_actions_need_the_token(running: EmbeddedDashboard) -> None:
    assert status_of(running, "guarded") == "RUNNING"
    for authorization in ("-", "Bearer wrong", f"Bearer {running.token}x", "Basic x"):
        code, _, body = post(running, "/api/workflow/cancel", {"id": "guarded"}, Authorization=authorization)
        assert code == 401 and "token is missing or wrong" in body["error"], authorization
    assert status_of(running, "guarded") == "RUNNING"
    code, _, _ = post(running, "/api/workflow/cancel", {"id": "guarded"})
    assert code == 200
    deadline = time.monotonic() + 10
    while status_of(running, "guarded") != "CANCELLED" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert status_of(running, "guarded") == "CANCELLED"


@pytest.mark.parametrize("host", ["evil.example", f"evil.example:{8765}", "127.0.0.1:1", ""])
def test_a_foreign_host_header_is_refused_for_pages_reads_and_actions(running: EmbeddedDashboard, host: str) -> None:
    for method, path in (("GET", "/"), ("GET", "/api/workflows")):
        code, _, body = send(running, method, path, host=host)
        assert code == 403 and "is not this dashboard's" in body["error"], (method, path)
    code, _, body = post(running, "/api/workflow/cancel", {"id": "guarded"}, host=host)
    assert code == 403 and "is not this dashboard's" in body["error"]
    code, _, body = post(running, "/api/workflow/cancel", {"id": "guarded"}, Host=host)  # a second Host header
    assert code == 400 and "more than one Host" in body["error"]
    assert status_of(running, "guarded") == "RUNNING"


def test_localhost_names_are_its_own(running: EmbeddedDashboard) -> None:
    port = running.url.rsplit(":", 1)[1]
    for host in (f"localhost:{port}", f"127.0.0.1:{port}"):
        assert send(running, "GET", "/api/workflows", host=host)[0] == 200


def test_a_cross_site_origin_is_refused_even_with_the_token(running: EmbeddedDashboard) -> None:
    for headers in ({"Origin": "http://evil.example"}, {"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"}):
        code, _, body = post(running, "/api/workflow/cancel", {"id": "guarded"}, **headers)
        assert code == 403 and "not allowed" in body["error"], headers
        assert send(running, "GET", "/api/workflows", headers)[0] == 403
    assert post(running, "/api/workflow/signal", {"id": "guarded", "name": "other"},
                Origin=running.url)[0] == 200  # its own page's origin
    assert status_of(running, "guarded") == "RUNNING"


def test_bodies_must_be_json_with_a_sane_length(running: EmbeddedDashboard) -> None:
    auth = {"Authorization": f"Bearer {running.token}"}
    data = b'{"id": "guarded"}'
    cases = [
        ({**auth, "Content-Type": "text/plain", "Content-Length": str(len(data))}, data, 415, "application/json"),
        ({**auth, "Content-Type": "application/x-www-form-urlencoded", "Content-Length": "2"}, b"{}", 415, "json"),
        ({**auth, "Content-Length": str(len(data))}, data, 415, "application/json"),
        ({**auth, "Content-Type": "application/json"}, None, 411, "Content-Length is required"),
        ({**auth, "Content-Type": "application/json", "Content-Length": "-5"}, None, 400, "non-negative"),
        ({**auth, "Content-Type": "application/json", "Content-Length": "ten"}, None, 400, "non-negative"),
        ({**auth, "Content-Type": "application/json", "Content-Length": str(MAX_BODY + 1)}, None, 413, "over the"),
    ]
    for headers, body, expected, words in cases:
        code, _, answer = send(running, "POST", "/api/workflow/cancel", headers, body)
        assert code == expected and words in answer["error"], (headers, code, answer)
    assert status_of(running, "guarded") == "RUNNING"
    code, _, _ = send(running, "POST", "/api/workflow/cancel",
                      {**auth, "Content-Type": "application/json; charset=utf-8", "Content-Length": str(len(data))},
                      data)
    assert code == 200


def test_every_answer_carries_the_security_headers(running: EmbeddedDashboard) -> None:
    answers = [send(running, "GET", "/"), send(running, "GET", "/static/app.js"),
               send(running, "GET", "/api/workflows"), send(running, "GET", "/nowhere"),
               post(running, "/api/workflow/cancel", {"id": "guarded"}, Authorization="-"),
               send(running, "GET", "/", host="evil.example")]
    for code, headers, _ in answers:
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"], code
        assert "script-src 'self'" in headers["Content-Security-Policy"]
        assert headers["X-Frame-Options"] == "DENY" and headers["X-Content-Type-Options"] == "nosniff"


@pytest.fixture
def env() -> Iterator[Any]:
    environment = pf.EmbeddedEnvironment(*flows.ALL, events=True)
    yield environment
    environment.close()


def test_reads_need_the_token_beyond_loopback_or_when_asked(env: Any) -> None:
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.10") and is_loopback("127.0.0.1")
    assert is_loopback("::1") and is_loopback("localhost")
    board = EmbeddedDashboard(env, read_token=True, token="given-token").start()
    try:
        assert board.token == "given-token" and board.login_url.endswith("/#token=given-token")
        assert send(board, "GET", "/api/workflows")[0] == 401
        assert send(board, "GET", "/api/workflows", {"Authorization": "Bearer given-token"})[0] == 200
        assert send(board, "GET", "/")[0] == 200  # the page holds no data: it asks for the token
    finally:
        board.stop()


def test_a_slow_client_is_cut_off_by_the_socket_timeout(env: Any) -> None:
    from pulsarflow.visibility.memory import InMemoryVisibilityStore
    from pulsarflow.visibility.service import VisibilityService

    server = DashboardServer(VisibilityService(InMemoryVisibilityStore(), env.client()), "127.0.0.1", 0,
                             timeout_s=0.5).start()
    try:
        host, port = server.httpd.server_address[:2]
        with socket.create_connection((str(host), port), timeout=5) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and never the end of the headers
            began = time.monotonic()
            assert sock.recv(1024) == b""  # the server closed the connection
            assert time.monotonic() - began < 3
    finally:
        server.stop()


def test_bound_to_every_address_without_names_only_address_hosts_pass() -> None:
    """Bound beyond loopback with no names given, a Host must be an address: a DNS name (what a
    rebinding attack sends) is refused."""
    from types import SimpleNamespace

    from pulsarflow.dashboard.server import DashboardServer

    board = DashboardServer.__new__(DashboardServer)
    board.httpd = SimpleNamespace(server_address=("0.0.0.0", 8765))  # type: ignore[assignment]  # its address only
    board._allowed = ()
    assert board.host_allowed("10.1.2.3:8765") and board.host_allowed("[fe80::1]:8765")
    assert not board.host_allowed("evil.example:8765")
    assert not board.host_allowed("10.1.2.3:9999") and not board.host_allowed(None)
