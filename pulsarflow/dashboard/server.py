"""The web dashboard: a JSON API over :class:`VisibilityService` and a static page, on the standard library.

    GET  /                                   the page (static/index.html, app.js, app.css; no CDN)
    GET  /api/workflows?name=&status=&tag=&started_after=&started_before=&ended_after=&ended_before=&limit=&cursor=
    GET  /api/workflow?id=ID                 one workflow: summary, steps (attempts, durations), events
    POST /api/workflow/signal  {"id", "name", "data"}
    POST /api/workflow/cancel  {"id", "reason"}
    POST /api/workflow/retry   {"id"}

Errors answer ``{"error": "..."}``: 404 for an unknown workflow, 400 for bad input.

Guards (see docs/security.md):

- It binds 127.0.0.1 unless told otherwise.
- Actions (every POST) need the dashboard's token, ``Authorization: Bearer <token>``; so
  do the ``/api/`` reads when it is bound beyond loopback (or ``read_token=True``). The
  token is made at start and printed in the URL to open (``http://127.0.0.1:8765/#token=...``:
  the page keeps it in the tab's session storage; a fragment never reaches a server or a
  Referer), or given (``token=``, ``PULSARFLOW_DASHBOARD_TOKEN``).
- A request whose ``Host`` is not the dashboard's own (DNS rebinding: a page of another
  site whose name now resolves to 127.0.0.1), or whose ``Origin`` is another site's
  (cross-site requests), is refused with 403 before anything else, reads included.
- A POST body must be ``application/json`` (415 otherwise) with a ``Content-Length``
  (411 when missing, 400 when not a number or negative, 413 over MAX_BODY).
- Every answer carries a Content-Security-Policy (this origin only, no framing),
  ``X-Frame-Options: DENY``, ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy``.
- Each connection has a socket timeout (a client that sends slowly cannot hold a thread).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import os
import secrets
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from pulsarflow.errors import PulsarflowError, SearchError, WorkflowNotFoundError
from pulsarflow.visibility.model import Query, parse_time
from pulsarflow.visibility.service import VisibilityService

log = logging.getLogger("pulsarflow.dashboard")

STATIC = Path(__file__).parent / "static"
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8"}
TIME_FILTERS = ("started_after", "started_before", "ended_after", "ended_before")
MAX_BODY = 1 << 20
TOKEN_ENV = "PULSARFLOW_DASHBOARD_TOKEN"
SOCKET_TIMEOUT_S = 10.0
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class DashboardServer:
    """Serves the dashboard on a background thread (``start``) or in the foreground (``serve_forever``)."""

    def __init__(self, service: VisibilityService, host: str = "127.0.0.1", port: int = 8765,
                 token: str | None = None, read_token: bool | None = None,
                 allowed_hosts: tuple[str, ...] = (), timeout_s: float = SOCKET_TIMEOUT_S) -> None:
        self.token = token or os.environ.get(TOKEN_ENV) or secrets.token_urlsafe(24)
        self.read_token = not is_loopback(host) if read_token is None else read_token
        self._allowed = allowed_hosts
        handler = type("BoundHandler", (_Handler,), {"service": service, "board": self, "timeout": timeout_s})
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def login_url(self) -> str:
        """The URL to open: the page takes the token from the fragment (never sent to a server)."""
        return f"{self.url}/#token={self.token}"

    def host_allowed(self, header: str | None) -> bool:
        """Whether a Host header names this dashboard (refuses names a rebinding DNS points here)."""
        if not header:
            return False
        port = self.httpd.server_address[1]
        bound = str(self.httpd.server_address[0])
        names = {f"{name}:{port}" for name in self._allowed}
        if is_loopback(bound):
            names |= {f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"}
        elif not ipaddress.ip_address(bound).is_unspecified or self._allowed:
            names.add(f"{bound}:{port}")
        else:  # bound to every address, no names given: an address, never a name a rebinding DNS could serve
            host, _, given_port = header.rpartition(":")
            try:
                ipaddress.ip_address(host.strip("[]"))
            except ValueError:
                return False
            return given_port == str(port)
        return header.lower() in names

    def token_ok(self, header: str | None) -> bool:
        given = (header or "").removeprefix("Bearer ").strip()
        return bool(given) and hmac.compare_digest(given.encode(), self.token.encode())

    def start(self) -> DashboardServer:
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="pulsarflow-dashboard", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(service: VisibilityService, host: str, port: int, token: str | None = None) -> None:
    """Serve in the foreground; prints the URL to open, token included (``token`` or PULSARFLOW_DASHBOARD_TOKEN)."""
    server = DashboardServer(service, host, port, token=token)
    reads = "reads and actions need" if server.read_token else "actions need"
    print(f"pulsarflow dashboard on {server.login_url} ({reads} the token; Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.httpd.server_close()


class _Refused(Exception):
    def __init__(self, status: HTTPStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class _Handler(BaseHTTPRequestHandler):
    service: VisibilityService
    board: DashboardServer
    server_version = "pulsarflow-dashboard"
    sys_version = ""

    def _guard(self, api: bool) -> bool:
        """Refuse (and answer) a request that is not the dashboard's own page's; True when it may go on."""
        host = self.headers.get("Host")
        origin = self.headers.get("Origin")
        if len(self.headers.get_all("Host") or []) > 1:
            return self._refuse(HTTPStatus.BAD_REQUEST, "more than one Host header")
        if not self.board.host_allowed(host):
            return self._refuse(HTTPStatus.FORBIDDEN, f"Host {host!r} is not this dashboard's")
        if origin is not None and origin.lower() != f"http://{host}".lower():
            return self._refuse(HTTPStatus.FORBIDDEN, f"requests from {origin!r} are not allowed (cross-site)")
        if self.headers.get("Sec-Fetch-Site") == "cross-site":
            return self._refuse(HTTPStatus.FORBIDDEN, "cross-site requests are not allowed")
        if api and not self.board.token_ok(self.headers.get("Authorization")):
            return self._refuse(HTTPStatus.UNAUTHORIZED, "the dashboard's token is missing or wrong: open the URL "
                                "printed at its start (…/#token=…) or send Authorization: Bearer <token>")
        return True

    def _refuse(self, status: HTTPStatus, reason: str) -> bool:
        self._json(status, {"error": reason})
        return False

    def do_GET(self) -> None:
        url = urlparse(self.path)
        if not self._guard(api=url.path.startswith("/api/") and self.board.read_token):
            return
        params = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if url.path in ("/", "/index.html"):
            return self._static("index.html")
        if url.path.startswith("/static/"):
            return self._static(url.path.removeprefix("/static/"))
        if url.path == "/api/workflows":
            return self._answer(lambda: self.service.list(_query(params)))
        if url.path == "/api/workflow":
            return self._answer(lambda: self.service.show(_required(params, "id")))
        self._json(HTTPStatus.NOT_FOUND, {"error": f"no such page {url.path!r}"})

    def do_POST(self) -> None:
        actions = {
            "/api/workflow/signal": lambda b: self.service.signal(_required(b, "id"), _required(b, "name"),
                                                                  b.get("data")),
            "/api/workflow/cancel": lambda b: self.service.cancel(_required(b, "id"),
                                                                  b.get("reason") or "cancelled from the dashboard"),
            "/api/workflow/retry": lambda b: self.service.retry(_required(b, "id")),
        }
        if not self._guard(api=True):
            self.close_connection = True  # its body, if any, is left unread
            return
        action = actions.get(urlparse(self.path).path)
        if action is None:
            return self._json(HTTPStatus.NOT_FOUND, {"error": f"no such action {self.path!r}"})
        try:
            body = self._body()
        except _Refused as refused:
            self.close_connection = True
            return self._json(refused.status, {"error": str(refused)})
        self._answer(lambda: action(body))

    def _body(self) -> dict[str, Any]:
        kind = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if kind != "application/json":
            raise _Refused(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, f"the body must be application/json, not {kind!r}")
        declared = self.headers.get("Content-Length")
        if declared is None:
            raise _Refused(HTTPStatus.LENGTH_REQUIRED, "a Content-Length is required")
        if not declared.strip().isdigit():
            raise _Refused(HTTPStatus.BAD_REQUEST, f"Content-Length must be a non-negative number, got {declared!r}")
        length = int(declared)
        if length > MAX_BODY:
            raise _Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                           f"request body of {length} bytes is over the limit of {MAX_BODY}")
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError as exc:
            raise SearchError(f"request body is not JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise SearchError("request body must be a JSON object")
        return body

    def _answer(self, compute: Any) -> None:
        try:
            self._json(HTTPStatus.OK, compute())
        except WorkflowNotFoundError as exc:
            self._json(HTTPStatus.NOT_FOUND, {"error": str(exc)})
        except PulsarflowError as exc:
            self._json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
        except Exception as exc:
            log.exception("dashboard request %s failed", self.path)
            self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"{type(exc).__name__}: {exc}"})

    def _static(self, name: str) -> None:
        path = (STATIC / name).resolve()
        if path.parent != STATIC.resolve() or not path.is_file() or path.suffix not in CONTENT_TYPES:
            return self._json(HTTPStatus.NOT_FOUND, {"error": f"no such file {name!r}"})
        self._send(HTTPStatus.OK, path.read_bytes(), CONTENT_TYPES[path.suffix])

    def _json(self, status: HTTPStatus, body: Any) -> None:
        self._send(status, json.dumps(body).encode(), "application/json")

    def _send(self, status: HTTPStatus, data: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in SECURITY_HEADERS.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)


def _query(params: dict[str, str]) -> Query:
    try:
        limit = int(params.get("limit") or 50)
    except ValueError:
        raise SearchError(f"limit must be a number, got {params['limit']!r}") from None
    times = {k: parse_time(params[k]) for k in TIME_FILTERS if params.get(k)}
    return Query(name=params.get("name") or None, status=params.get("status") or None,
                 tag=params.get("tag") or None, limit=limit, cursor=params.get("cursor") or None, **times)


def _required(values: dict[str, Any], key: str) -> str:
    value = values.get(key)
    if not isinstance(value, str) or not value:
        raise SearchError(f"{key!r} is required (a non-empty string)")
    return value
