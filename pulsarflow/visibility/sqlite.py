"""A visibility store in one SQLite file: for a single machine (a dashboard, the CLI, a small deployment).

Events are kept as Avro bytes (the same encoding as on the events topic); summaries
as JSON beside the indexed columns the searches filter on. One connection guarded
by a lock serves every thread (the dashboard's server threads included).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from pulsarflow.codec import Codec
from pulsarflow.errors import BackendError
from pulsarflow.messages.events import WorkflowEvent
from pulsarflow.visibility.backend import translated
from pulsarflow.visibility.model import (
    Page,
    Query,
    WorkflowSummary,
    decode_cursor,
    fold,
    page_of,
    summary_from_json,
    summary_to_json,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS workflows (
    workflow_id TEXT PRIMARY KEY, workflow_name TEXT, status TEXT,
    started_at_ms INTEGER NOT NULL, closed_at_ms INTEGER, summary TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS workflows_by_start ON workflows (started_at_ms DESC, workflow_id DESC);
CREATE INDEX IF NOT EXISTS workflows_by_name ON workflows (workflow_name, started_at_ms DESC);
CREATE INDEX IF NOT EXISTS workflows_by_status ON workflows (status, started_at_ms DESC);
CREATE TABLE IF NOT EXISTS workflow_tags (
    tag TEXT NOT NULL, workflow_id TEXT NOT NULL, PRIMARY KEY (tag, workflow_id));
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE,
    workflow_id TEXT NOT NULL, at_ms INTEGER NOT NULL, body BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS events_by_workflow ON events (workflow_id, at_ms, seq);
"""

FILTERS = (
    ("name", "workflow_name = ?"),
    ("status", "status = ?"),
    ("tag", "workflow_id IN (SELECT workflow_id FROM workflow_tags WHERE tag = ?)"),
    ("started_after", "started_at_ms >= ?"),
    ("started_before", "started_at_ms < ?"),
    ("ended_after", "closed_at_ms >= ?"),
    ("ended_before", "closed_at_ms < ?"),
)


class SqliteVisibilityStore:
    def __init__(self, path: str | Path, codec: Codec | None = None) -> None:
        self.path = str(path)
        self.codec = codec or Codec()
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(SCHEMA)
        except sqlite3.Error as exc:
            raise BackendError(f"cannot open the SQLite visibility store {self.path}: {exc}") from exc

    def apply(self, events: Sequence[WorkflowEvent]) -> int:
        with self._lock, self._translated("apply events"):
            self._db.execute("BEGIN IMMEDIATE")
            try:
                new = sum(self._apply_one(event) for event in events)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            return new

    def _apply_one(self, event: WorkflowEvent) -> int:
        inserted = self._db.execute(
            "INSERT OR IGNORE INTO events (event_id, workflow_id, at_ms, body) VALUES (?, ?, ?, ?)",
            (event.event_id, event.workflow_id, event.at_ms, self.codec.encode(event)))
        if inserted.rowcount == 0:
            return 0
        summary = fold(self._get(event.workflow_id), event)
        self._db.execute(
            "INSERT OR REPLACE INTO workflows VALUES (?, ?, ?, ?, ?, ?)",
            (summary.workflow_id, summary.workflow_name, summary.status, summary.started_at_ms or 0,
             summary.closed_at_ms, summary_to_json(summary)))
        if event.tags is not None:
            self._db.execute("DELETE FROM workflow_tags WHERE workflow_id = ?", (summary.workflow_id,))
            self._db.executemany("INSERT OR IGNORE INTO workflow_tags VALUES (?, ?)",
                                 [(tag, summary.workflow_id) for tag in summary.tags])
        return 1

    def get(self, workflow_id: str) -> WorkflowSummary | None:
        with self._lock, self._translated("read a workflow"):
            return self._get(workflow_id)

    def _get(self, workflow_id: str) -> WorkflowSummary | None:
        row = self._db.execute("SELECT summary FROM workflows WHERE workflow_id = ?", (workflow_id,)).fetchone()
        return None if row is None else summary_from_json(row[0])

    def history(self, workflow_id: str) -> list[WorkflowEvent]:
        with self._lock, self._translated("read a history"):
            rows = self._db.execute("SELECT body FROM events WHERE workflow_id = ? ORDER BY at_ms, seq",
                                    (workflow_id,)).fetchall()
        return [self.codec.decode(WorkflowEvent, bytes(row[0])) for row in rows]

    def search(self, query: Query) -> Page:
        where, params = _where(query)
        sql = (f"SELECT summary FROM workflows {where} "
               "ORDER BY started_at_ms DESC, workflow_id DESC LIMIT ?")
        with self._lock, self._translated("search"):
            rows = self._db.execute(sql, [*params, query.limit + 1]).fetchall()
        return page_of([summary_from_json(row[0]) for row in rows], query.limit)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _translated(self, what: str) -> AbstractContextManager[None]:
        return translated((sqlite3.Error,), f"SQLite visibility store {self.path} could not {what}")


def _where(query: Query) -> tuple[str, list[Any]]:
    clauses, params = [], []
    for attribute, clause in FILTERS:
        value = getattr(query, attribute)
        if value is not None:
            clauses.append(clause)
            params.append(value)
    if query.cursor is not None:
        started, workflow_id = decode_cursor(query.cursor)
        clauses.append("(started_at_ms < ? OR (started_at_ms = ? AND workflow_id < ?))")
        params += [started, started, workflow_id]
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", params
