"""Messages consumed by the workflow engine, keyed by workflow id."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from pulsarflow.errors import ErrorInfo
from pulsarflow.messages.common import ParentRef, ReplyTo
from pulsarflow.messages.executor import ExecuteTask
from pulsarflow.messages.state import Arrival, Command, UpdateCall

# Values of the Avro enum TimerPurpose.
SLEEP = "SLEEP"
SIGNAL_TIMEOUT = "SIGNAL_TIMEOUT"
TASK_TIMEOUT = "TASK_TIMEOUT"
WORKFLOW_TIMEOUT = "WORKFLOW_TIMEOUT"
UNBLOCK = "UNBLOCK"  # replay a blocked run again (the engine's own backoff)


@dataclass(frozen=True, slots=True)
class StartWorkflow:
    workflow_name: str
    input: bytes
    reply: ReplyTo | None = None
    parent: ParentRef | None = None
    timeout_ms: int | None = None
    tags: tuple[str, ...] = ()
    trace: str | None = None  # W3C traceparent of the span that started it (OpenTelemetry)


@dataclass(frozen=True, slots=True)
class TaskCompleted:
    position: int
    result: bytes
    attempts: int
    generation: int = 0


@dataclass(frozen=True, slots=True)
class TaskFailed:
    position: int
    error: ErrorInfo
    generation: int = 0


@dataclass(frozen=True, slots=True)
class TimerFired:
    position: int
    purpose: str
    generation: int = 0


@dataclass(frozen=True, slots=True)
class ChildCompleted:
    position: int
    result: bytes
    generation: int = 0


@dataclass(frozen=True, slots=True)
class ChildFailed:
    position: int
    error: ErrorInfo
    generation: int = 0


@dataclass(frozen=True, slots=True)
class SendSignal:
    signal_id: str
    name: str
    data: bytes
    reply: ReplyTo | None = None


@dataclass(frozen=True, slots=True)
class GetWorkflowResult:
    reply: ReplyTo


@dataclass(frozen=True, slots=True)
class GetWorkflowStatus:
    reply: ReplyTo


@dataclass(frozen=True, slots=True)
class CancelWorkflow:
    reason: str
    reply: ReplyTo | None = None


@dataclass(frozen=True, slots=True)
class RetryWorkflow:
    retry_id: str
    positions: tuple[int, ...] = ()
    reply: ReplyTo | None = None


@dataclass(frozen=True, slots=True)
class QueryWorkflow:
    name: str
    args: bytes
    reply: ReplyTo


@dataclass(frozen=True, slots=True)
class UpdateWorkflow:
    call: UpdateCall
    reply: ReplyTo


@dataclass(frozen=True, slots=True)
class RetryTask:
    """The next attempt of a task, sent back after its backoff: run only if the step is still open."""

    task: ExecuteTask

    @property
    def position(self) -> int:
        return self.task.position

    @property
    def generation(self) -> int:
        return self.task.generation


@dataclass(frozen=True, slots=True)
class SignalWithStart:
    """Start the workflow unless it runs already, and signal it, in one decision."""

    start: StartWorkflow
    signal: SendSignal


@dataclass(frozen=True, slots=True)
class UpdateWithStart:
    """Start the workflow unless it runs already, and update it, in one decision."""

    start: StartWorkflow
    update: UpdateWorkflow


@dataclass(frozen=True, slots=True)
class CompleteTask:
    """The outcome of a task attempt that handed back a completion token, given from outside."""

    position: int
    generation: int
    task_name: str
    result: bytes | None = None
    error: ErrorInfo | None = None
    reply: ReplyTo | None = None


WorkflowInput = Union[
    StartWorkflow, TaskCompleted, TaskFailed, TimerFired, ChildCompleted, ChildFailed,
    SendSignal, GetWorkflowResult, GetWorkflowStatus, CancelWorkflow, RetryWorkflow,
    QueryWorkflow, UpdateWorkflow, RetryTask, SignalWithStart, UpdateWithStart, CompleteTask,
]


@dataclass(frozen=True, slots=True)
class WorkflowEngineMessage:
    message_id: str
    workflow_id: str
    sent_at_ms: int
    message: WorkflowInput


@dataclass(frozen=True, slots=True)
class HistoryChunk:
    """A sealed piece of a workflow's history, stored beside its state (runtime/history.py)."""

    commands: tuple[Command, ...] = ()
    arrivals: tuple[Arrival, ...] = ()
