"""The observer a ``MessageHandler`` runs: derive the events once, then keep them and count them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pulsarflow.clock import Clock
from pulsarflow.engines.outgoing import Decision
from pulsarflow.events import EventSink
from pulsarflow.events.derive import derive

if TYPE_CHECKING:
    from pulsarflow.events.metrics import Metrics


class EventRecorder:
    """Derives the events of each handled message and hands them to a sink and to metrics.

    Either may be None; build no recorder at all when both are (the handler then pays nothing).
    """

    def __init__(self, clock: Clock, sink: EventSink | None = None, metrics: Metrics | None = None) -> None:
        self.clock = clock
        self.sink = sink
        self.metrics = metrics

    def observe(self, envelope: Any, before: Any, decision: Decision[Any], now_ms: int) -> None:
        end_ms = self.clock.now_ms()
        events = derive(envelope, before, decision, now_ms, end_ms)
        if self.sink is not None and events:
            self.sink.emit(events)
        if self.metrics is not None:
            self.metrics.record(envelope, events, (end_ms - now_ms) / 1000)


def recorder_for(clock: Clock, sink: EventSink | None, metrics: Metrics | None) -> EventRecorder | None:
    """The observer to give a handler: None when there is nothing to record."""
    if sink is None and metrics is None:
        return None
    return EventRecorder(clock, sink, metrics)
