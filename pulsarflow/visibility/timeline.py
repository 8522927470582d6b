"""One workflow's history as steps: each task with its attempts and durations, timers, signals, children.

Pure: built from the events alone (:func:`steps`), shared by ``pulsarflow show`` and the dashboard.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pulsarflow.errors import ErrorInfo
from pulsarflow.messages import events as ev
from pulsarflow.messages.events import WorkflowEvent

# Event type -> (step kind, what it does to the step).
ISSUE = {ev.TASK_DISPATCHED: "task", ev.TIMER_SET: "timer", ev.SIGNAL_AWAITED: "signal",
         ev.CHILD_STARTED: "child", ev.SIDE_EFFECT_RECORDED: "side effect"}
# The last ``pulsarflow.heartbeat(details)`` of an attempt, in the event's ``data``: the
# TaskRetried of a failed attempt (the details its retry starts from), and TaskHeartbeat (an
# event an executor may send while an attempt runs; none does yet, see docs/visibility.md).
HEARTBEAT = "TaskHeartbeat"
OUTCOME = {ev.TASK_COMPLETED: "completed", ev.TASK_FAILED: "failed", ev.TASK_TIMED_OUT: "timed out",
           ev.TIMER_FIRED: "fired", ev.SIGNAL_RECEIVED: "received", ev.SIGNAL_TIMED_OUT: "timed out",
           ev.CHILD_COMPLETED: "completed", ev.CHILD_FAILED: "failed", ev.SIDE_EFFECT_RECORDED: "recorded",
           ev.TASK_CANCEL_REQUESTED: "cancelled"}


@dataclass
class Attempt:
    number: int
    started_at_ms: int
    duration_ms: int | None = None
    error: ErrorInfo | None = None
    retry_at_ms: int | None = None
    heartbeat: bytes | None = None  # the details it last reported with pulsarflow.heartbeat()


@dataclass
class Step:
    position: int
    kind: str
    name: str | None
    issued_at_ms: int
    outcome: str = "pending"
    closed_at_ms: int | None = None
    due_at_ms: int | None = None
    related_id: str | None = None
    data: bytes | None = None
    error: ErrorInfo | None = None
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def duration_ms(self) -> int | None:
        return None if self.closed_at_ms is None else self.closed_at_ms - self.issued_at_ms


def steps(history: list[WorkflowEvent]) -> list[Step]:
    """The steps of a history in position order; a task dispatched again (a retry) reopens, keeping its attempts."""
    by_position: dict[int, Step] = {}
    for event in history:
        if event.position is None:
            continue
        kind = ISSUE.get(event.type)
        step = by_position.get(event.position)
        if step is None:
            step = by_position[event.position] = Step(event.position, kind or "step", event.name, event.at_ms,
                                                      due_at_ms=event.due_at_ms, related_id=event.related_id)
        elif event.type == ev.TASK_DISPATCHED and step.outcome != "pending":
            step.outcome, step.closed_at_ms, step.error = "pending", None, None
        elif kind is not None and step.kind == "step":  # an outcome arrived before its step was announced
            step.kind, step.issued_at_ms = kind, event.at_ms
        _apply(step, event)
    return [by_position[p] for p in sorted(by_position)]


def _apply(step: Step, event: WorkflowEvent) -> None:
    if event.type in (ev.TASK_STARTED, ev.TASK_RETRIED, HEARTBEAT):
        attempt = next((a for a in reversed(step.attempts) if a.number == event.attempt), None)
        if attempt is None:
            attempt = Attempt(event.attempt, event.at_ms)
            step.attempts.append(attempt)
        if event.type == ev.TASK_STARTED:
            attempt.started_at_ms, attempt.duration_ms = event.at_ms, event.duration_ms
        elif event.type == ev.TASK_RETRIED:
            attempt.error, attempt.retry_at_ms = event.error, event.due_at_ms
        attempt.heartbeat = event.data if event.type != ev.TASK_STARTED and event.data is not None \
            else attempt.heartbeat
    outcome = OUTCOME.get(event.type)
    if outcome is not None:
        step.outcome, step.closed_at_ms = outcome, event.at_ms
        step.data = event.data if event.data is not None else step.data
        step.error = event.error
        if step.kind == "task" and event.error is not None and step.attempts:
            last = step.attempts[-1]
            last.error = last.error or event.error
