"""Events: what happened to a workflow, kept by the event storage (``schemas/WorkflowEvent.avsc``).

Events are derived by the shared runtime from (incoming message, the engine's decision)
in :mod:`pulsarflow.events.derive`; engines never build them. ``type`` is a plain
string so that a new event type never breaks an old reader; the known ones are below.
"""

from __future__ import annotations

from dataclasses import dataclass

from pulsarflow.errors import ErrorInfo

# Workflow lifecycle (emitted by the workflow engine).
WORKFLOW_STARTED = "WorkflowStarted"
WORKFLOW_COMPLETED = "WorkflowCompleted"
WORKFLOW_FAILED = "WorkflowFailed"
WORKFLOW_CANCELLED = "WorkflowCancelled"
WORKFLOW_TIMED_OUT = "WorkflowTimedOut"
WORKFLOW_RESTARTED = "WorkflowRestarted"
CANCEL_REQUESTED = "WorkflowCancelRequested"
RETRY_REQUESTED = "WorkflowRetryRequested"
WORKFLOW_BLOCKED = "WorkflowBlocked"  # its code cannot go on (mismatch with its history, or a bug); it stays open
WORKFLOW_UNBLOCKED = "WorkflowUnblocked"
# Steps issued by the workflow code (emitted by the workflow engine).
TASK_DISPATCHED = "TaskDispatched"
TIMER_SET = "TimerSet"
SIGNAL_AWAITED = "SignalAwaited"
CHILD_STARTED = "ChildStarted"
SIDE_EFFECT_RECORDED = "SideEffectRecorded"
# Step outcomes (emitted by the workflow engine when it records them).
TASK_COMPLETED = "TaskCompleted"
TASK_FAILED = "TaskFailed"
TASK_TIMED_OUT = "TaskTimedOut"
TIMER_FIRED = "TimerFired"
SIGNAL_RECEIVED = "SignalReceived"
SIGNAL_TIMED_OUT = "SignalTimedOut"
CHILD_COMPLETED = "ChildCompleted"
CHILD_FAILED = "ChildFailed"
# Task attempts (emitted by the executor that ran them).
TASK_STARTED = "TaskStarted"
TASK_RETRIED = "TaskRetried"
TASK_CANCEL_REQUESTED = "TaskCancelRequested"
TAGS_CHANGED = "WorkflowTagsChanged"


@dataclass(frozen=True, slots=True)
class WorkflowEvent:
    """One event; see the schema for what each field holds."""

    event_id: str
    type: str
    workflow_id: str
    at_ms: int
    source: str = ""
    cause_id: str = ""
    workflow_name: str | None = None
    status: str | None = None
    position: int | None = None
    name: str | None = None
    attempt: int = 0
    related_id: str | None = None
    due_at_ms: int | None = None
    duration_ms: int | None = None
    data: bytes | None = None
    error: ErrorInfo | None = None
    tags: tuple[str, ...] | None = None
