"""What the CLI and the dashboard both do: search, show one workflow, and act on it, as plain JSON data.

Actions go through the client (``signal``, ``cancel``, ``retry``); a client that lacks
one says so clearly. ``lock`` serializes every call when the engines run in this very
process (the embedded mode is single-threaded).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from pulsarflow.errors import ErrorInfo, SearchError, WorkflowNotFoundError
from pulsarflow.messages.events import WorkflowEvent
from pulsarflow.visibility import VisibilityStore
from pulsarflow.visibility.model import Query, WorkflowSummary
from pulsarflow.visibility.payload_view import PayloadView
from pulsarflow.visibility.timeline import Step, steps

Json = dict[str, Any]
View = Callable[[bytes | None], Any]


class VisibilityService:
    def __init__(self, store: VisibilityStore, client: Any = None, lock: threading.Lock | None = None,
                 refresh: Callable[[], object] | None = None, payloads: View | None = None) -> None:
        self.store = store
        self.payloads: View = payloads or PayloadView()  # decodes payloads for display (codecs, keys)
        self.client = client
        self.lock: contextlib.AbstractContextManager[Any] = lock or contextlib.nullcontext()
        self.refresh = refresh  # catches the store up with the events (a feed's drain), if any

    def list(self, query: Query) -> Json:
        with self.lock:
            self._refresh()
            page = self.store.search(query)
        return {"workflows": [summary_json(s, self.payloads) for s in page.items], "next_cursor": page.next_cursor}

    def show(self, workflow_id: str) -> Json:
        with self.lock:
            self._refresh()
            summary = self.store.get(workflow_id)
            history = self.store.history(workflow_id)
        if summary is None:
            raise WorkflowNotFoundError(f"no workflow {workflow_id!r} in the visibility store; check the id, "
                                        "or wait until its events have been applied")
        view = self.payloads
        return {"workflow": summary_json(summary, view), "steps": [step_json(s, view) for s in steps(history)],
                "events": [event_json(e, view) for e in history]}

    def signal(self, workflow_id: str, name: str, data: Any = None) -> Json:
        if not name:
            raise SearchError("a signal needs a name, e.g. pulsarflow signal order-1 approve '\"yes\"'")
        self._act("signal", workflow_id, name, data)
        return {"workflow_id": workflow_id, "action": "signal", "detail": f"signal {name!r} delivered"}

    def cancel(self, workflow_id: str, reason: str = "cancelled from the visibility tools") -> Json:
        detail = self._act("cancel", workflow_id, reason)
        return {"workflow_id": workflow_id, "action": "cancel", "detail": str(detail or "cancellation requested")}

    def retry(self, workflow_id: str) -> Json:
        detail = self._act("retry", workflow_id)
        return {"workflow_id": workflow_id, "action": "retry", "detail": str(detail or "retry requested")}

    def _act(self, action: str, workflow_id: str, *args: Any) -> Any:
        if self.client is None:
            raise SearchError(f"{action} needs a connection to the engines: pass --service-url (Pulsar)")
        method = getattr(self.client, action, None)
        if method is None:
            raise SearchError(f"{action} is not supported by this release of the pulsarflow client; upgrade "
                             "pulsarflow on this machine")
        with self.lock:
            return method(workflow_id, *args)

    def _refresh(self) -> None:
        if self.refresh is not None:
            self.refresh()


def summary_json(s: WorkflowSummary, view: View | None = None) -> Json:
    view = view or payload
    return {"workflow_id": s.workflow_id, "workflow_name": s.workflow_name, "status": s.status,
            "started_at": iso(s.started_at_ms), "closed_at": iso(s.closed_at_ms),
            "started_at_ms": s.started_at_ms, "closed_at_ms": s.closed_at_ms,
            "duration_ms": None if s.closed_at_ms is None or s.started_at_ms is None
            else s.closed_at_ms - s.started_at_ms,
            "parent_id": s.parent_id, "tags": list(s.tags), "result": view(s.result),
            "error": error_json(s.error), "events": s.events}


def step_json(s: Step, view: View | None = None) -> Json:
    view = view or payload
    attempts = [{**asdict(a), "error": error_json(a.error), "started_at": iso(a.started_at_ms),
                 "heartbeat": view(a.heartbeat)} for a in s.attempts]
    return {"position": s.position, "kind": s.kind, "name": s.name, "outcome": s.outcome,
            "issued_at": iso(s.issued_at_ms), "issued_at_ms": s.issued_at_ms, "closed_at_ms": s.closed_at_ms,
            "duration_ms": s.duration_ms, "due_at": iso(s.due_at_ms), "related_id": s.related_id,
            "value": view(s.data), "error": error_json(s.error), "attempts": attempts}


def event_json(e: WorkflowEvent, view: View | None = None) -> Json:
    view = view or payload
    return {"event_id": e.event_id, "type": e.type, "at": iso(e.at_ms), "at_ms": e.at_ms, "source": e.source,
            "status": e.status, "position": e.position, "name": e.name, "attempt": e.attempt,
            "related_id": e.related_id, "due_at": iso(e.due_at_ms), "duration_ms": e.duration_ms,
            "data": view(e.data), "error": error_json(e.error), "tags": None if e.tags is None else list(e.tags)}


def error_json(error: ErrorInfo | None) -> Json | None:
    if error is None:
        return None
    return {"type": error.type, "message": error.message, "traceback": error.traceback,
            "task_name": error.task_name, "attempts": error.attempts, "cause": error_json(error.cause)}


def payload(data: bytes | None) -> Any:
    """A payload for display without codecs: the JSON value when it is JSON (one-element lists unwrapped),
    else base64; encoded ones (compressed, encrypted, kept in a store) as :class:`PayloadView` shows them."""
    return PayloadView()(data)


def iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    moment = dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
