"""The web dashboard: a JSON API over :class:`VisibilityService` and a static page, on the standard library.

    GET  /                                   the page (static/index.html, app.js, app.css; no CDN)
    GET  /api/workflows?name=&status=&tag=&started_after=&started_before=&ended_after=&ended_before=&limit=&cursor=
    GET  /api/workflow?id=ID                 one workflow: summary, steps (attempts, durations), events
    POST /api/workflow/signal  {"id", "name", "data"}
    POST /api/workflow/cancel  {"id", "reason"}
    POST /api/workflow/retry   {"id"}

Errors answer ``{"error": "..."}``: 404 for an unknown workflow, 400 for bad input.
"""

from __future__ import annotations

import json
import logging
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


class DashboardServer:
    """Serves the dashboard on a background thread (``start``) or in the foreground (``serve_forever``)."""

    def __init__(self, service: VisibilityService, host: str = "127.0.0.1", port: int = 8765) -> None:
        handler = type("BoundHandler", (_Handler,), {"service": service})
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

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


def serve(service: VisibilityService, host: str, port: int) -> None:
    server = DashboardServer(service, host, port)
    print(f"pulsarflow dashboard on {server.url} (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    service: VisibilityService
    server_version = "pulsarflow-dashboard"

    def do_GET(self) -> None:
        url = urlparse(self.path)
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
        action = actions.get(urlparse(self.path).path)
        if action is None:
            return self._json(HTTPStatus.NOT_FOUND, {"error": f"no such action {self.path!r}"})
        self._answer(lambda: action(self._body()))

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise SearchError(f"request body of {length} bytes is over the limit of {MAX_BODY}")
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
        self.send_header("Cache-Control", "no-store")
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
