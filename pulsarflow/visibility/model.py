"""What a visibility store keeps and answers: summaries folded from events, queries, pages.

Every backend folds events with :func:`fold` and filters with :func:`matches`, so they
agree by construction; the contract suite in tests/visibility checks that they do.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from pulsarflow.errors import ErrorInfo, SearchError
from pulsarflow.messages import events as ev
from pulsarflow.messages.events import WorkflowEvent

RUNNING = "RUNNING"
CLOSING = frozenset({ev.WORKFLOW_COMPLETED, ev.WORKFLOW_FAILED, ev.WORKFLOW_CANCELLED})
MAX_LIMIT = 1000


@dataclass(frozen=True)
class WorkflowSummary:
    """One workflow as the visibility store sees it, after every event applied so far."""

    workflow_id: str
    workflow_name: str | None = None
    status: str | None = None
    started_at_ms: int | None = None
    closed_at_ms: int | None = None
    updated_at_ms: int = 0
    status_at_ms: int = 0
    parent_id: str | None = None
    tags: tuple[str, ...] = ()
    result: bytes | None = None
    error: ErrorInfo | None = None
    events: int = 0

    @property
    def sort_key(self) -> tuple[int, str]:
        """Listing order, newest first: by start time, then by id (both descending)."""
        return (self.started_at_ms or 0, self.workflow_id)


def fold(summary: WorkflowSummary | None, event: WorkflowEvent) -> WorkflowSummary:
    """The summary after one more event. Robust to events of different emitters arriving out of order."""
    s = summary or WorkflowSummary(event.workflow_id, started_at_ms=event.at_ms)
    changes: dict[str, Any] = {"events": s.events + 1, "updated_at_ms": max(s.updated_at_ms, event.at_ms)}
    if event.workflow_name and not s.workflow_name:
        changes["workflow_name"] = event.workflow_name
    if event.type == ev.WORKFLOW_STARTED:
        changes.update(started_at_ms=event.at_ms, parent_id=event.related_id)
        if event.name and not s.workflow_name:
            changes["workflow_name"] = event.name
    if event.status is not None and event.at_ms >= s.status_at_ms:
        changes.update(status=event.status, status_at_ms=event.at_ms)
        if event.status == RUNNING:
            changes.update(closed_at_ms=None, result=None, error=None)
    if event.type in CLOSING or event.type == ev.WORKFLOW_BLOCKED:  # a blocked run shows why
        changes.update(closed_at_ms=event.at_ms if event.type in CLOSING else None, result=event.data,
                       error=event.error)
    if event.tags is not None:
        changes["tags"] = tuple(event.tags)
    return replace(s, **changes)


@dataclass(frozen=True)
class Query:
    """A search. Times are milliseconds since the epoch; ``*_after`` is inclusive, ``*_before`` exclusive."""

    name: str | None = None
    status: str | None = None
    tag: str | None = None
    started_after: int | None = None
    started_before: int | None = None
    ended_after: int | None = None
    ended_before: int | None = None
    limit: int = 50
    cursor: str | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_LIMIT:
            raise SearchError(f"limit must be between 1 and {MAX_LIMIT}, got {self.limit}")
        if self.status is not None:
            object.__setattr__(self, "status", self.status.upper())
        if self.cursor is not None:
            decode_cursor(self.cursor)  # fails now, with a clear message, rather than in a backend


@dataclass(frozen=True)
class Page:
    """One page of a search; pass ``next_cursor`` back as ``Query.cursor`` for the next one (None: no more)."""

    items: list[WorkflowSummary] = field(default_factory=list)
    next_cursor: str | None = None


def matches(summary: WorkflowSummary, query: Query) -> bool:
    """Whether a summary satisfies every filter of a query (the cursor aside)."""
    started, ended = summary.started_at_ms or 0, summary.closed_at_ms
    checks = (
        query.name is None or summary.workflow_name == query.name,
        query.status is None or summary.status == query.status,
        query.tag is None or query.tag in summary.tags,
        query.started_after is None or started >= query.started_after,
        query.started_before is None or started < query.started_before,
        query.ended_after is None or (ended is not None and ended >= query.ended_after),
        query.ended_before is None or (ended is not None and ended < query.ended_before),
    )
    return all(checks)


def after_cursor(summary: WorkflowSummary, cursor: str | None) -> bool:
    """Whether a summary comes after the cursor in listing order (always, without a cursor)."""
    return cursor is None or summary.sort_key < decode_cursor(cursor)


def encode_cursor(summary: WorkflowSummary) -> str:
    started, workflow_id = summary.sort_key
    return base64.urlsafe_b64encode(json.dumps([started, workflow_id]).encode()).decode()


def decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        started, workflow_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if isinstance(started, int) and isinstance(workflow_id, str):
            return started, workflow_id
    except (ValueError, TypeError, binascii.Error):
        pass
    raise SearchError(f"cursor {cursor[:40]!r} is not one this store returned; pass the next_cursor of a page, "
                     "or no cursor for the first page")


def page_of(ordered: list[WorkflowSummary], limit: int) -> Page:
    """A page from up to ``limit + 1`` summaries in listing order (one more tells whether more exist)."""
    items = ordered[:limit]
    more = len(ordered) > limit
    return Page(items, encode_cursor(items[-1]) if more and items else None)


# -- storing summaries as JSON (SQLite, Redis) ---------------------------------------------

def summary_to_json(summary: WorkflowSummary) -> str:
    raw = asdict(summary)
    raw["result"] = None if summary.result is None else base64.b64encode(summary.result).decode()
    raw["tags"] = list(summary.tags)
    return json.dumps(raw, separators=(",", ":"))


def summary_from_json(text: str | bytes) -> WorkflowSummary:
    raw = json.loads(text)
    raw["result"] = None if raw["result"] is None else base64.b64decode(raw["result"])
    raw["tags"] = tuple(raw["tags"])
    raw["error"] = error_from_dict(raw["error"])
    return WorkflowSummary(**raw)


def error_from_dict(raw: dict[str, Any] | None) -> ErrorInfo | None:
    if raw is None:
        return None
    return ErrorInfo(**{**raw, "cause": error_from_dict(raw.get("cause"))})


def parse_time(text: str) -> int:
    """Milliseconds since the epoch from ISO 8601 (UTC when no zone is given) or from a number of ms."""
    if text.strip().lstrip("-").isdigit():
        return int(text)
    try:
        moment = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise SearchError(f"time {text!r} is neither ISO 8601 (2026-01-31T12:00:00Z) nor milliseconds "
                         "since the epoch") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return int(moment.timestamp() * 1000)
