"""A visibility store in memory (tests, the embedded mode, the dashboard over an embedded run)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from pulsarflow.messages.events import WorkflowEvent
from pulsarflow.visibility.model import Page, Query, WorkflowSummary, after_cursor, fold, matches, page_of


class InMemoryVisibilityStore:
    def __init__(self) -> None:
        self._summaries: dict[str, WorkflowSummary] = {}
        self._histories: dict[str, list[WorkflowEvent]] = {}
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def apply(self, events: Sequence[WorkflowEvent]) -> int:
        new = 0
        with self._lock:
            for event in events:
                if event.event_id in self._seen:
                    continue
                self._seen.add(event.event_id)
                self._summaries[event.workflow_id] = fold(self._summaries.get(event.workflow_id), event)
                self._histories.setdefault(event.workflow_id, []).append(event)
                new += 1
        return new

    def get(self, workflow_id: str) -> WorkflowSummary | None:
        return self._summaries.get(workflow_id)

    def history(self, workflow_id: str) -> list[WorkflowEvent]:
        with self._lock:
            return sorted(self._histories.get(workflow_id, ()), key=lambda e: e.at_ms)

    def search(self, query: Query) -> Page:
        with self._lock:
            found = [s for s in self._summaries.values() if matches(s, query) and after_cursor(s, query.cursor)]
        found.sort(key=lambda s: s.sort_key, reverse=True)
        return page_of(found[:query.limit + 1], query.limit)

    def close(self) -> None:
        """Nothing to release."""
