"""Readable text for the visibility commands: tables, a timeline, and a progress line for long waits."""

from __future__ import annotations

import itertools
import time
from typing import Any, TextIO

from pulsarflow.errors import ResultTimeoutError
from pulsarflow.visibility.service import Json, VisibilityService

OPEN = ("RUNNING", None)


def text(command: str, result: Json) -> str:
    if command == "list":
        return workflows_table(result)
    if command == "show":
        return workflow_text(result)
    return f"{result['workflow_id']}: {result['detail']}"


def table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join(lines)


def workflows_table(result: Json) -> str:
    rows = [[w["workflow_id"], w["workflow_name"], w["status"], w["started_at"], _duration(w["duration_ms"]),
             ",".join(w["tags"])] for w in result["workflows"]]
    out = table(["ID", "NAME", "STATUS", "STARTED", "DURATION", "TAGS"], rows) if rows else "no workflows match"
    if result["next_cursor"]:
        out += f"\nmore: --cursor {result['next_cursor']}"
    return out


def workflow_text(result: Json) -> str:
    w = result["workflow"]
    lines = [f"workflow  {w['workflow_id']} ({w['workflow_name']})", f"status    {w['status']}",
             f"started   {w['started_at']}"]
    if w["closed_at"]:
        lines.append(f"closed    {w['closed_at']} after {_duration(w['duration_ms'])}")
    if w["parent_id"]:
        lines.append(f"parent    {w['parent_id']}")
    if w["tags"]:
        lines.append(f"tags      {', '.join(w['tags'])}")
    if w["result"] is not None:
        lines.append(f"result    {_cell(w['result'])}")
    if w["error"]:
        lines += ["error     " + _error_line(w["error"]), *_indent(w["error"]["traceback"])]
    lines += ["", "timeline", _steps_table(result["steps"])]
    return "\n".join(lines)


def _steps_table(steps: list[Json]) -> str:
    rows: list[list[Any]] = []
    for s in steps:
        rows.append([s["position"], s["kind"], s["name"], s["outcome"], s["issued_at"], _duration(s["duration_ms"]),
                     len(s["attempts"]) or "", _error_line(s["error"]) if s["error"] else _cell(s["value"])])
        for a in s["attempts"]:
            beat = a.get("heartbeat")
            if a["error"] or beat is not None:
                detail = [_error_line(a["error"])] if a["error"] else []
                detail += [f"last heartbeat {_cell(beat)}"] if beat is not None else []
                rows.append(["", "", f"  attempt {a['number']}", "failed" if a["error"] else "", a["started_at"],
                             _duration(a["duration_ms"]), "", "; ".join(detail)])
    return table(["#", "KIND", "NAME", "OUTCOME", "ISSUED", "TOOK", "ATTEMPTS", "DETAIL"], rows) if rows \
        else "(no steps yet)"


def wait_until_closed(service: VisibilityService, workflow_id: str, timeout_s: float, out: TextIO) -> Json:
    """Poll until the workflow is closed, showing progress on ``out`` when it is a terminal."""
    progress = Progress(out)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            result = service.show(workflow_id)
            status = result["workflow"]["status"]
            if status not in OPEN:
                return result
            if time.monotonic() >= deadline:
                raise ResultTimeoutError(f"workflow {workflow_id!r} is still {status} after {timeout_s}s; "
                                         "wait longer with --wait, or look at its timeline with show")
            progress.update(f"{workflow_id}: {status}, {result['workflow']['events']} events, "
                            f"{len(result['steps'])} steps")
            time.sleep(0.5)
    finally:
        progress.done()


class Progress:
    """One self-rewriting status line with a spinner and elapsed time; silent when ``out`` is not a terminal."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.enabled = out.isatty()
        self.started = time.monotonic()
        self._spin = itertools.cycle("|/-\\")

    def update(self, message: str) -> None:
        if self.enabled:
            elapsed = time.monotonic() - self.started
            self.out.write(f"\r{next(self._spin)} {message} ({elapsed:.0f}s)\x1b[K")
            self.out.flush()

    def done(self) -> None:
        if self.enabled:
            self.out.write("\r\x1b[K")
            self.out.flush()


def _error_line(error: Json) -> str:
    where = f" in task {error['task_name']} after {error['attempts']} attempt(s)" if error.get("task_name") else ""
    return f"{error['type']}: {error['message']}{where}"


def _indent(block: str) -> list[str]:
    return ["          " + line for line in block.rstrip().splitlines()]


def _duration(ms: int | None) -> str:
    if ms is None:
        return ""
    if ms < 1000:
        return f"{ms} ms"
    if ms < 120_000:
        return f"{ms / 1000:.1f} s"
    return f"{ms / 60_000:.1f} min"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict) and set(value) == {"undecoded"}:  # a payload the codecs given cannot read
        return f"<{value['undecoded']}>"  # whole: it says why, and what to give
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."
