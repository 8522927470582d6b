"""The dashboard's JSON API and static files over HTTP, on an embedded run (no browser needed)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

from pulsarflow.dashboard.embedded import EmbeddedDashboard
from tests.e2e import flows


def call(board: EmbeddedDashboard, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {board.token}"}
    request = urllib.request.Request(board.url + path, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            return response.status, json.loads(raw) if response.headers["Content-Type"] == "application/json" \
                else raw.decode()
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def eventually(check: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def test_list_show_and_act_over_http(dashboard: EmbeddedDashboard) -> None:
    with dashboard.lock:
        client = dashboard.env.client()
        client.start(flows.approval, 3600, id="http-1")
        client.start(flows.sequence, 2, id="http-2")
    assert eventually(lambda: len(call(dashboard, "/api/workflows")[1]["workflows"]) == 2)
    status, page = call(dashboard, "/api/workflows?status=RUNNING")
    assert status == 200 and [w["workflow_id"] for w in page["workflows"]] == ["http-1"]
    status, shown = call(dashboard, "/api/workflow?id=http-1")
    assert status == 200 and shown["steps"][0]["kind"] == "signal"
    status, answer = call(dashboard, "/api/workflow/signal", {"id": "http-1", "name": "decision", "data": "ok"})
    assert status == 200 and answer["detail"] == "signal 'decision' delivered"
    assert eventually(lambda: call(dashboard, "/api/workflow?id=http-1")[1]["workflow"]["status"] == "COMPLETED")
    assert call(dashboard, "/api/workflow?id=http-1")[1]["workflow"]["result"] == "got ok"


def test_errors_are_json_with_a_reason(dashboard: EmbeddedDashboard) -> None:
    status, body = call(dashboard, "/api/workflow?id=ghost")
    assert status == 404 and "no workflow 'ghost'" in body["error"]
    status, body = call(dashboard, "/api/workflows?limit=abc")
    assert status == 400 and "limit must be a number" in body["error"]
    status, body = call(dashboard, "/api/workflow/cancel", {"reason": "x"})
    assert status == 400 and "'id' is required" in body["error"]
    status, body = call(dashboard, "/api/workflow/cancel", {"id": "ghost"})
    assert status == 400 and "ghost" in body["error"]
    status, body = call(dashboard, "/static/../server.py")
    assert status == 404
    status, body = call(dashboard, "/nowhere")
    assert status == 404 and "no such page" in body["error"]


def test_the_page_and_its_assets_are_served_without_any_cdn(dashboard: EmbeddedDashboard) -> None:
    status, page = call(dashboard, "/")
    assert status == 200 and '<script src="/static/app.js">' in page
    for asset in ("app.js", "app.css"):
        status, text = call(dashboard, f"/static/{asset}")
        assert status == 200 and len(text) > 500
    assert "http://" not in page and "https://" not in page
