"""Counters and latencies per engine, message type, task and workflow, in Prometheus text format.

Fed by :class:`~pulsarflow.events.recorder.EventRecorder` with each handled message
and its derived events. ``render()`` gives the exposition text a worker serves on
``/metrics``; ``reporter`` (e.g. a Pulsar Function's ``context.record_metric``) also
receives every latency sample as it is taken.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Sequence
from typing import Any

from pulsarflow.messages import events as ev
from pulsarflow.messages.events import WorkflowEvent

Labels = tuple[tuple[str, str], ...]
Reporter = Callable[[str, float], None]

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
ENGINES = {"WorkflowEngineMessage": "workflow", "TaskExecutorMessage": "executor"}
CLOSING = {ev.WORKFLOW_COMPLETED, ev.WORKFLOW_FAILED, ev.WORKFLOW_CANCELLED}

HELP = {
    "pulsarflow_messages_handled_total": ("counter", "Messages handled, by engine and message type."),
    "pulsarflow_handle_seconds": ("histogram", "Time to handle one message (engine and publish), by engine and type."),
    "pulsarflow_events_total": ("counter", "Events emitted, by event type."),
    "pulsarflow_task_attempts_total": ("counter", "Task attempts run by executors, by task."),
    "pulsarflow_task_attempt_seconds": ("histogram", "Duration of one task attempt, by task."),
    "pulsarflow_task_retries_total": ("counter", "Task attempts that failed and were scheduled again, by task."),
    "pulsarflow_tasks_total": ("counter", "Tasks finished, by task and outcome (completed, failed, timed_out)."),
    "pulsarflow_workflows_total": ("counter", "Workflows closed, by workflow name and status."),
    "pulsarflow_workflow_seconds": ("histogram", "Start to close of a workflow, by workflow name."),
}
TASK_OUTCOMES = {ev.TASK_COMPLETED: "completed", ev.TASK_FAILED: "failed", ev.TASK_TIMED_OUT: "timed_out"}


class _Histogram:
    __slots__ = ("count", "counts", "sum")

    def __init__(self) -> None:
        self.counts = [0] * len(BUCKETS)
        self.count = 0
        self.sum = 0.0

    def add(self, value: float) -> None:
        index = bisect.bisect_left(BUCKETS, value)
        if index < len(BUCKETS):
            self.counts[index] += 1
        self.count += 1
        self.sum += value


class Metrics:
    """Thread-safe counters and histograms; no global registry (pass one where it is needed)."""

    def __init__(self, reporter: Reporter | None = None) -> None:
        self.reporter = reporter
        self._counters: dict[tuple[str, Labels], float] = {}
        self._histograms: dict[tuple[str, Labels], _Histogram] = {}
        self._lock = threading.Lock()

    def record(self, envelope: Any, events: Sequence[WorkflowEvent], seconds: float) -> None:
        inner = getattr(envelope, "message", envelope)
        labels = (("engine", ENGINES.get(type(envelope).__name__, type(envelope).__name__)),
                  ("type", type(inner).__name__))
        with self._lock:
            self._inc("pulsarflow_messages_handled_total", labels)
            self._observe("pulsarflow_handle_seconds", labels, seconds)
            for event in events:
                self._count_event(event)
        if self.reporter is not None:
            self.reporter(f"handle_ms_{labels[0][1]}_{labels[1][1]}", seconds * 1000)
            for event in events:
                if event.type == ev.TASK_STARTED and event.duration_ms is not None:
                    self.reporter(f"task_ms_{event.name}", float(event.duration_ms))

    def _count_event(self, event: WorkflowEvent) -> None:
        self._inc("pulsarflow_events_total", (("type", event.type),))
        task = (("task", event.name or ""),)
        if event.type == ev.TASK_STARTED:
            self._inc("pulsarflow_task_attempts_total", task)
            if event.duration_ms is not None:
                self._observe("pulsarflow_task_attempt_seconds", task, event.duration_ms / 1000)
        elif event.type == ev.TASK_RETRIED:
            self._inc("pulsarflow_task_retries_total", task)
        elif event.type in TASK_OUTCOMES:
            self._inc("pulsarflow_tasks_total", task + (("outcome", TASK_OUTCOMES[event.type]),))
        elif event.type in CLOSING:
            name = event.workflow_name or ""
            self._inc("pulsarflow_workflows_total", (("workflow", name), ("status", event.status or "")))
            if event.duration_ms is not None:
                self._observe("pulsarflow_workflow_seconds", (("workflow", name),), event.duration_ms / 1000)

    def _inc(self, name: str, labels: Labels, by: float = 1.0) -> None:
        key = (name, labels)
        self._counters[key] = self._counters.get(key, 0.0) + by

    def _observe(self, name: str, labels: Labels, value: float) -> None:
        key = (name, labels)
        histogram = self._histograms.get(key)
        if histogram is None:
            histogram = self._histograms[key] = _Histogram()
        histogram.add(value)

    def counter(self, name: str, **labels: str) -> float:
        """Current value of a counter (0 when never incremented)."""
        with self._lock:
            return self._counters.get((name, tuple(labels.items())), 0.0)

    def render(self) -> str:
        """The Prometheus text exposition format (version 0.0.4)."""
        with self._lock:
            counters = sorted(self._counters.items())
            histograms = sorted((k, (list(h.counts), h.count, h.sum)) for k, h in self._histograms.items())
        lines: list[str] = []
        announced: set[str] = set()
        for (name, labels), value in counters:
            _announce(lines, announced, name)
            lines.append(f"{name}{_labels(labels)} {_number(value)}")
        for (name, labels), (counts, count, total) in histograms:
            _announce(lines, announced, name)
            cumulative = 0
            for bound, n in zip(BUCKETS, counts):
                cumulative += n
                lines.append(f"{name}_bucket{_labels(labels + (('le', repr(bound)),))} {cumulative}")
            lines.append(f"{name}_bucket{_labels(labels + (('le', '+Inf'),))} {count}")
            lines.append(f"{name}_sum{_labels(labels)} {_number(total)}")
            lines.append(f"{name}_count{_labels(labels)} {count}")
        return "\n".join(lines) + "\n"


def _announce(lines: list[str], announced: set[str], name: str) -> None:
    if name not in announced:
        announced.add(name)
        kind, text = HELP.get(name, ("untyped", name))
        lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(value)
