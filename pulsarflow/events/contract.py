"""The EventSink port's contract as plain checks over any sink with a way to read back what it kept.

A check gets a ``SinkSubject``: the sink, ``flush`` (what the handler does before saving
state) and ``read_back`` (every event kept, in the order a reader sees them, duplicates
included). Run over the in-memory store and the topic sink on the in-memory queue
(tests/contract/test_event_sink.py) and on Pulsar (tests/integration/test_event_sink_pulsar.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pulsarflow.errors import ErrorInfo
from pulsarflow.events import EventSink
from pulsarflow.messages.events import WorkflowEvent


@dataclass
class SinkSubject:
    sink: EventSink
    flush: Callable[[], None]
    read_back: Callable[[int], list[WorkflowEvent]]  # at least this many events, oldest first
    prefix: str = "sink"


def _events(prefix: str, workflow: str, count: int) -> list[WorkflowEvent]:
    return [WorkflowEvent(f"{prefix}-{workflow}-{n}", "TaskCompleted", f"{prefix}-{workflow}", 1_000 + n,
                          source="contract", position=n, data=bytes([n % 256]) * n,
                          error=ErrorInfo("ValueError", f"failure {n}") if n % 3 == 0 else None,
                          tags=("a", "b") if n % 2 else None)
            for n in range(count)]


def flushed_events_are_kept_whole_and_in_order(s: SinkSubject) -> None:
    one, two = _events(s.prefix, "one", 12), _events(s.prefix, "two", 7)
    s.sink.emit(one[:5] + two[:3])
    s.sink.emit(one[5:] + two[3:])
    s.flush()
    kept = s.read_back(len(one) + len(two))
    for mine in (one, two):
        got = [e for e in kept if e.workflow_id == mine[0].workflow_id]
        assert got == mine, f"events of {mine[0].workflow_id} lost, changed or reordered: {got[:3]}..."


def a_redelivered_event_keeps_its_id(s: SinkSubject) -> None:
    events = _events(s.prefix, "again", 3)
    s.sink.emit(events)
    s.sink.emit(events[1:2])  # a redelivered message emits its events again
    s.flush()
    kept = [e for e in s.read_back(4) if e.workflow_id == events[0].workflow_id]
    ids = [e.event_id for e in kept]
    assert sorted(set(ids)) == sorted(e.event_id for e in events), f"events lost: {ids}"
    assert len(ids) in (3, 4), f"an event emitted twice must be kept at most twice, with one id: {ids}"


CHECKS: dict[str, Callable[[SinkSubject], None]] = {
    check.__name__: check for check in (flushed_events_are_kept_whole_and_in_order, a_redelivered_event_keeps_its_id)
}
