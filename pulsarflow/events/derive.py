"""Events from (incoming message, state before, the engine's decision): no engine involved.

Three sources, each a table keyed by class or value *name*, so a new message type is
one entry and an unknown one still yields a generic event named after its class:

- the incoming message says what arrived (a task outcome, a signal, a timer...);
- the outgoing messages say what was issued (a task dispatched, a timer set, a child);
- the state before and after say how the workflow changed (new steps, status, tags).

A decision marked ``unchanged`` produced no event on the workflow engine: it was a
duplicate or a query. Event ids are derived from the id of the incoming message, the
event type and the step position, so a redelivered message yields the same ids.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pulsarflow.engines.outgoing import Decision, Outgoing
from pulsarflow.errors import ErrorInfo
from pulsarflow.messages import events as ev
from pulsarflow.messages.events import WorkflowEvent

WORKFLOW, EXECUTOR = "workflow", "executor"

# TimerFired.purpose -> the event recorded when the timer fires.
FIRED = {"SLEEP": ev.TIMER_FIRED, "SIGNAL_TIMEOUT": ev.SIGNAL_TIMED_OUT, "TASK_TIMEOUT": ev.TASK_TIMED_OUT,
         "WORKFLOW_TIMEOUT": ev.WORKFLOW_TIMED_OUT}
BLOCKED = "BLOCKED"  # the status events give a RUNNING run whose code cannot go on

# A workflow status reached from another status -> its event (new statuses fall back to Workflow<Status>).
CLOSED = {"COMPLETED": ev.WORKFLOW_COMPLETED, "FAILED": ev.WORKFLOW_FAILED, "CANCELLED": ev.WORKFLOW_CANCELLED,
          "RUNNING": ev.WORKFLOW_RESTARTED}
# Command kinds whose steps are announced from the state (others come from outgoing messages).
ISSUED = {"SIGNAL": ev.SIGNAL_AWAITED, "SIDE_EFFECT": ev.SIDE_EFFECT_RECORDED}
ANNOUNCED_BY_MESSAGES = frozenset({"TASK", "TIMER", "CHILD"})


class Builder:
    """Makes the events of one handled message, sharing what they have in common."""

    def __init__(self, workflow_id: str, cause_id: str, source: str, now_ms: int, state: Any = None) -> None:
        self.workflow_id = workflow_id
        self.cause_id = cause_id
        self.source = source
        self.now_ms = now_ms
        self.name = getattr(state, "workflow_name", None)
        # A blocked run is RUNNING to the engine; the events call it BLOCKED so that lists and dashboards show it.
        self.status = BLOCKED if getattr(state, "blocked", None) is not None else getattr(state, "status", None)

    def make(self, type_: str, position: int | None = None, at_ms: int | None = None, **fields: Any) -> WorkflowEvent:
        suffix = "" if position is None else f"/{position}"
        return WorkflowEvent(
            event_id=f"{self.cause_id}/{type_}{suffix}", type=type_, workflow_id=self.workflow_id,
            at_ms=self.now_ms if at_ms is None else at_ms, source=self.source, cause_id=self.cause_id,
            workflow_name=self.name, status=self.status, position=position, **fields)


def derive(envelope: Any, before: Any, decision: Decision[Any], now_ms: int, end_ms: int) -> list[WorkflowEvent]:
    """The events of one handled message; ``now_ms`` is when handling began, ``end_ms`` when it ended."""
    kind = type(envelope).__name__
    if kind == "WorkflowEngineMessage":
        return workflow_events(envelope, before, decision, now_ms)
    if kind == "TaskExecutorMessage":
        return executor_events(envelope, decision, now_ms, end_ms)
    return [generic(Builder(_workflow_id(envelope), _message_id(envelope), kind, now_ms), _inner(envelope))]


# -- the workflow engine ------------------------------------------------------------------

def workflow_events(envelope: Any, before: Any, decision: Decision[Any], now_ms: int) -> list[WorkflowEvent]:
    if decision.unchanged or decision.state is None:
        return []
    after = decision.state
    b = Builder(envelope.workflow_id, envelope.message_id, WORKFLOW, now_ms, after)
    message = envelope.message
    handler = INCOMING.get(type(message).__name__, _generic_incoming)
    steps = [e for o in decision.outgoing if (e := _issued(b, o)) is not None] + _new_steps(b, before, after)
    steps.sort(key=lambda e: -1 if e.position is None else e.position)
    return handler(b, message, before, after) + steps + _status_change(b, before, after)


def _on_start(b: Builder, msg: Any, before: Any, after: Any) -> list[WorkflowEvent]:
    if before is not None:
        return []  # a second start of the same id only attaches a waiter
    parent = msg.parent
    return [b.make(ev.WORKFLOW_STARTED, name=msg.workflow_name, data=msg.input,
                   related_id=parent.workflow_id if parent is not None else None,
                   due_at_ms=b.now_ms + msg.timeout_ms if msg.timeout_ms is not None else None,
                   tags=_tags(after) or _tags(msg))]


def _on_task(b: Builder, msg: Any, before: Any, after: Any) -> list[WorkflowEvent]:
    error = getattr(msg, "error", None)
    attempts = error.attempts if error is not None else getattr(msg, "attempts", 0)
    return [b.make(ev.TASK_FAILED if error is not None else ev.TASK_COMPLETED, msg.position,
                   name=_step_name(after, msg.position), attempt=attempts, error=error,
                   data=getattr(msg, "result", None), related_id=f"{b.workflow_id}/{msg.position}")]


def _on_child(b: Builder, msg: Any, before: Any, after: Any) -> list[WorkflowEvent]:
    error = getattr(msg, "error", None)
    return [b.make(ev.CHILD_FAILED if error is not None else ev.CHILD_COMPLETED, msg.position,
                   name=_step_name(after, msg.position), error=error, data=getattr(msg, "result", None),
                   related_id=f"{b.workflow_id}/{msg.position}")]


def _on_timer(b: Builder, msg: Any, before: Any, after: Any) -> list[WorkflowEvent]:
    type_ = FIRED.get(msg.purpose, f"{_camel(msg.purpose)}TimerFired")
    position = msg.position if msg.position >= 0 else None
    error = _arrival_error(after, position)
    return [b.make(type_, position, name=_step_name(after, position) or msg.purpose.lower(), error=error)]


def _on_signal(b: Builder, msg: Any, before: Any, after: Any) -> list[WorkflowEvent]:
    """A received signal belongs to the workflow, not to a step: the wait that takes it is decided by the code."""
    return [b.make(ev.SIGNAL_RECEIVED, None, name=msg.name, data=msg.data, related_id=msg.signal_id)]


def _on_cancel(b: Builder, msg: Any, before: Any, after: Any) -> list[WorkflowEvent]:
    return [b.make(ev.CANCEL_REQUESTED, name=getattr(msg, "reason", None) or None)]


def _on_retry(b: Builder, msg: Any, before: Any, after: Any) -> list[WorkflowEvent]:
    return [b.make(ev.RETRY_REQUESTED, related_id=getattr(msg, "retry_id", None))]


def _nothing(b: Builder, msg: Any, before: Any, after: Any) -> list[WorkflowEvent]:
    return []  # queries: a reply, nothing happened to the workflow


def _generic_incoming(b: Builder, msg: Any, before: Any, after: Any) -> list[WorkflowEvent]:
    return [generic(b, msg)]


INCOMING: dict[str, Callable[[Builder, Any, Any, Any], list[WorkflowEvent]]] = {
    "StartWorkflow": _on_start, "TaskCompleted": _on_task, "TaskFailed": _on_task,
    "ChildCompleted": _on_child, "ChildFailed": _on_child, "TimerFired": _on_timer, "SendSignal": _on_signal,
    "CancelWorkflow": _on_cancel, "RetryWorkflow": _on_retry,
    "GetWorkflowResult": _nothing, "GetWorkflowStatus": _nothing,
}


def _issued(b: Builder, out: Outgoing) -> WorkflowEvent | None:
    """The event announcing an outgoing message, if it issues something (answers do not)."""
    envelope = out.message
    inner = _inner(envelope)
    kind = type(inner).__name__
    if kind == "ExecuteTask":
        return b.make(ev.TASK_DISPATCHED, inner.position, name=inner.task_name, attempt=inner.attempt,
                      related_id=inner.task_id, due_at_ms=out.deliver_at_ms, data=inner.input)
    if kind == "TimerFired" and inner.purpose == "SLEEP" and _workflow_id(envelope) == b.workflow_id:
        return b.make(ev.TIMER_SET, inner.position, name="sleep", due_at_ms=out.deliver_at_ms)
    if kind == "StartWorkflow" and inner.parent is not None and inner.parent.workflow_id == b.workflow_id:
        return b.make(ev.CHILD_STARTED, inner.parent.position, name=inner.workflow_name,
                      related_id=_workflow_id(envelope), data=inner.input)
    if kind == "CancelTask":
        return b.make(ev.TASK_CANCEL_REQUESTED, inner.position, related_id=inner.task_id)
    return None


def _new_steps(b: Builder, before: Any, after: Any) -> list[WorkflowEvent]:
    known = set(getattr(before, "commands", ()))
    events = []
    for command in after.commands:
        if command in known or command.kind in ANNOUNCED_BY_MESSAGES:
            continue
        type_ = ISSUED.get(command.kind, f"{_camel(command.kind)}StepIssued")
        arrival = _arrival(after, command.position)
        events.append(b.make(type_, command.position, name=command.name or None,
                             data=getattr(arrival, "value", None), error=getattr(arrival, "error", None)))
    return events


def _status_change(b: Builder, before: Any, after: Any) -> list[WorkflowEvent]:
    events = []
    old_status = getattr(before, "status", None)
    if before is not None and after.status != old_status:
        type_ = CLOSED.get(after.status, f"Workflow{_camel(after.status)}")
        closed = getattr(after, "closed_at_ms", None)
        duration = closed - after.started_at_ms if closed is not None and after.status != "RUNNING" else None
        events.append(b.make(type_, data=after.result, error=after.error, duration_ms=duration))
    elif before is None and after.status != "RUNNING":  # started and finished in one step
        events.append(b.make(CLOSED.get(after.status, f"Workflow{_camel(after.status)}"),
                             data=after.result, error=after.error, duration_ms=0))
    was_blocked, blocked = getattr(before, "blocked", None), getattr(after, "blocked", None)
    if blocked is not None and (was_blocked is None or was_blocked.reason != blocked.reason):
        events.append(b.make(ev.WORKFLOW_BLOCKED, blocked.position, error=blocked.reason))
    elif blocked is None and was_blocked is not None:
        events.append(b.make(ev.WORKFLOW_UNBLOCKED, was_blocked.position))
    new_tags, old_tags = _tags(after), _tags(before)
    if before is not None and new_tags != old_tags:
        events.append(b.make(ev.TAGS_CHANGED, tags=new_tags or ()))
    return events


# -- the task executor --------------------------------------------------------------------

def executor_events(envelope: Any, decision: Decision[Any], now_ms: int, end_ms: int) -> list[WorkflowEvent]:
    task = envelope.message
    b = Builder(task.workflow_id, envelope.message_id, EXECUTOR, now_ms)
    if type(task).__name__ != "ExecuteTask":
        return [generic(b, task)]
    events = [b.make(ev.TASK_STARTED, task.position, name=task.task_name, attempt=task.attempt,
                     related_id=task.task_id, duration_ms=end_ms - now_ms)]
    errors = list(decision.errors)
    for out in decision.outgoing:
        inner = _inner(out.message)
        retry = getattr(inner, "task", inner)  # retries come back through the workflow engine (RetryTask)
        if type(retry).__name__ == "ExecuteTask" and retry.attempt > task.attempt:
            events.append(b.make(ev.TASK_RETRIED, task.position, at_ms=end_ms, name=task.task_name,
                                 attempt=task.attempt, related_id=task.task_id, due_at_ms=out.deliver_at_ms,
                                 error=errors[0] if errors else None,
                                 data=retry.heartbeat_details or None))  # what it last heartbeated
    return events


# -- anything else ------------------------------------------------------------------------

def generic(b: Builder, message: Any) -> WorkflowEvent:
    """An event for a message no table knows: named after its class, with what it obviously carries."""
    position = getattr(message, "position", None)
    error = getattr(message, "error", None)
    name = getattr(message, "name", None)
    return b.make(type(message).__name__, position if isinstance(position, int) else None,
                  error=error if isinstance(error, ErrorInfo) else None,
                  name=name if isinstance(name, str) else None)


def _inner(envelope: Any) -> Any:
    return getattr(envelope, "message", envelope)


def _workflow_id(envelope: Any) -> str:
    found = getattr(envelope, "workflow_id", None) or getattr(_inner(envelope), "workflow_id", None)
    return found if isinstance(found, str) else ""


def _message_id(envelope: Any) -> str:
    found = getattr(envelope, "message_id", None)
    return found if isinstance(found, str) else f"{type(envelope).__name__}"


def _step_name(state: Any, position: int | None) -> str | None:
    commands = getattr(state, "commands", ())
    if position is None or not 0 <= position < len(commands):
        return None
    return commands[position].name or None


def _arrival(state: Any, position: int | None) -> Any:
    for arrival in reversed(getattr(state, "arrivals", ())):
        if arrival.position == position:
            return arrival
    return None


def _arrival_error(state: Any, position: int | None) -> ErrorInfo | None:
    arrival = _arrival(state, position)
    return arrival.error if arrival is not None else None


def _tags(obj: Any) -> tuple[str, ...] | None:
    tags = getattr(obj, "tags", None)
    return tuple(tags) if tags else None


def _camel(value: str) -> str:
    return "".join(part.capitalize() for part in value.lower().split("_"))
