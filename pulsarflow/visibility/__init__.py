"""Visibility: list and search workflows, and read one workflow's history, fed from the events.

The port is :class:`VisibilityStore`; backends: ``memory`` (tests, embedded),
``sqlite`` (one machine), ``redis`` (shared). :func:`pulsarflow.visibility.stores.open_store`
opens one from a URL. A store is fed by applying events: in the embedded mode from the
local event store, on Pulsar by a consumer of the events topic with its own
subscription (``pulsarflow.visibility.feed``), so it can be rebuilt by replaying the topic.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from pulsarflow.messages.events import WorkflowEvent
from pulsarflow.visibility.model import Page, Query, WorkflowSummary


class VisibilityStore(Protocol):
    """Summaries and histories of workflows.

    Contract (tests/visibility/test_contract.py runs it over every backend):
    - ``apply`` is idempotent: an event whose ``event_id`` was applied before changes
      nothing. It returns how many events were new. A batch is applied in order.
    - ``get`` and ``history`` of an unknown id return None and [] (never raise).
    - ``history`` is ordered by ``at_ms``, ties in the order applied.
    - ``search`` lists newest first (start time, then id, both descending), applies
      every filter of the query, and pages with ``Page.next_cursor``: following the
      cursors yields each matching workflow exactly once.
    - Concurrent ``apply`` calls lose no event.
    """

    def apply(self, events: Sequence[WorkflowEvent]) -> int: ...

    def get(self, workflow_id: str) -> WorkflowSummary | None: ...

    def history(self, workflow_id: str) -> list[WorkflowEvent]: ...

    def search(self, query: Query) -> Page: ...

    def close(self) -> None: ...


__all__ = ["Page", "Query", "VisibilityStore", "WorkflowSummary"]
