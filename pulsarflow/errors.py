"""The one error hierarchy of pulsarflow.

::

    PulsarflowError
    ├── DefinitionError          a task or workflow is declared or used wrongly
    ├── SerializationError       a payload cannot be encoded or decoded
    ├── DecodeError              bytes are not a valid Avro message of the expected schema
    ├── SchemaError              a schema file is invalid or incompatible with its history
    ├── StateConflictError       a versioned state write lost a race
    ├── BackendError             a storage or transport backend failed (wraps the cause)
    ├── SearchError              a visibility search or command got bad input (filter, time, cursor)
    ├── WorkflowNotFoundError    no workflow has the requested id
    ├── ResultTimeoutError       a client stopped waiting for an answer
    ├── QueryFailedError         a workflow query could not be answered (carries why)
    │   └── UpdateFailedError    an update was rejected or its handler raised
    ├── UpdateRejectedError      the workflow declares no handler for an update (inside the engine)
    ├── ControlRefusedError      a cancel or retry was refused (the workflow is not in a state for it)
    ├── ScheduleError            a schedule is specified wrongly (cron, interval, overlap) or its name is taken
    ├── WorkflowFailedError      raised by the client: the workflow failed (carries the cause)
    │   └── WorkflowCancelledError   the workflow was cancelled (also raised at its pending steps)
    └── WorkflowError            raised inside workflow code, catchable by the workflow
        ├── TaskFailedError          a task failed for good
        │   └── TaskTimeoutError     a task ran past its overall timeout
        ├── ChildWorkflowFailedError a child workflow failed
        ├── SignalTimeoutError       no signal arrived in time
        ├── NonDeterminismError      the code no longer matches the recorded history
        └── SandboxViolationError    the workflow did I/O or read the clock or randomness

Adapters translate backend exceptions into :class:`BackendError` with ``raise ... from exc``.
Messages say what went wrong and how to fix it.
"""

from __future__ import annotations

from dataclasses import dataclass


class PulsarflowError(Exception):
    """Root of every error raised by pulsarflow."""


class DefinitionError(PulsarflowError):
    """A task or workflow is declared, registered or referenced wrongly."""


class SerializationError(PulsarflowError):
    """A user payload cannot be encoded or decoded by the payload converter."""


class DecodeError(PulsarflowError):
    """Bytes could not be decoded as the expected Avro message."""

    def __init__(self, schema: str, size: int, reason: str) -> None:
        super().__init__(f"cannot decode {size} bytes as {schema}: {reason}")
        self.schema = schema
        self.size = size
        self.reason = reason


class SchemaError(PulsarflowError):
    """A schema file is invalid, or a change to it is incompatible with its history."""


class StateConflictError(PulsarflowError):
    """A versioned state write found a newer version than the one it read."""


class BackendError(PulsarflowError):
    """A storage or transport backend failed; the cause is chained."""


class SearchError(PulsarflowError):
    """A visibility search or command was given bad input: a filter, a time, a cursor or a store URL."""


class WorkflowNotFoundError(PulsarflowError):
    """No workflow exists with the requested id."""


class ResultTimeoutError(PulsarflowError):
    """The client gave up waiting for an answer."""


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """An error that happened elsewhere (a task, a child workflow), as carried in messages."""

    type: str
    message: str
    traceback: str = ""
    task_name: str | None = None
    attempts: int = 0
    workflow_id: str | None = None
    cause: ErrorInfo | None = None

    def chain(self) -> list[ErrorInfo]:
        """This error followed by its causes, outermost first."""
        out: list[ErrorInfo] = []
        node: ErrorInfo | None = self
        while node is not None:
            out.append(node)
            node = node.cause
        return out

    def describe(self) -> str:
        where = f" (raised in task {self.task_name!r}, attempt {self.attempts})" if self.task_name else ""
        return f"{self.type}: {self.message}{where}"


class WorkflowFailedError(PulsarflowError):
    """Raised by the client when a workflow failed. ``error`` holds the remote cause chain."""

    def __init__(self, workflow_id: str, error: ErrorInfo) -> None:
        lines = [f"workflow {workflow_id!r} failed: {error.describe()}"]
        lines += [f"  caused by {c.describe()}" for c in error.chain()[1:]]
        super().__init__("\n".join(lines))
        self.workflow_id = workflow_id
        self.error = error

    @property
    def remote_traceback(self) -> str:
        return "\n".join(c.traceback for c in self.error.chain() if c.traceback)


class WorkflowCancelledError(WorkflowFailedError):
    """The workflow was cancelled.

    Inside workflow code it is raised at every step pending when the cancel arrived: catch
    it to clean up (steps issued afterwards run normally), or let it end the workflow as
    CANCELLED. Clients see it from ``result()`` of a cancelled workflow.
    """

    def __init__(self, workflow_id: str, error: ErrorInfo) -> None:
        super().__init__(workflow_id, error)
        self.args = (error.message,)


class QueryFailedError(PulsarflowError):
    """A query could not be answered; ``error`` says why (unknown query, or its handler raised)."""

    def __init__(self, error: ErrorInfo) -> None:
        super().__init__(error.describe())
        self.error = error


class UpdateFailedError(QueryFailedError):
    """An update was not applied or its handler raised; ``error`` says why."""


class UpdateRejectedError(PulsarflowError):
    """Recorded for an update the workflow has no handler for (the client sees UpdateFailedError)."""


class ControlRefusedError(PulsarflowError):
    """A cancel or retry request was refused; the message says why."""


class ScheduleError(PulsarflowError):
    """A schedule was given a bad cron expression, interval or overlap policy, or its name is taken."""


class WorkflowError(PulsarflowError):
    """Raised inside workflow code; workflows may catch it."""


class TaskFailedError(WorkflowError):
    """A task failed after its retries. ``error`` holds the remote error."""

    def __init__(self, error: ErrorInfo) -> None:
        if error.type == "TaskTimeoutError":
            super().__init__(error.message)
        else:
            super().__init__(f"task {error.task_name!r} failed after {error.attempts} attempt(s): {error.type}")
        self.error = error
        self.task_name = error.task_name
        self.attempts = error.attempts


class TaskTimeoutError(TaskFailedError):
    """A task did not finish within its overall timeout."""


class ChildWorkflowFailedError(WorkflowError):
    """A child workflow failed. ``error`` holds its error chain."""

    def __init__(self, error: ErrorInfo) -> None:
        super().__init__(error.describe())
        self.error = error


class SignalTimeoutError(WorkflowError):
    """No signal of the awaited name arrived before the timeout."""


class NonDeterminismError(WorkflowError):
    """The workflow code issued a different step than the one recorded in its history."""

    def __init__(self, workflow_id: str, position: int, expected: str, found: str) -> None:
        super().__init__(
            f"workflow {workflow_id!r} is not deterministic at step {position}: history has "
            f"{expected}, code now issues {found}. Keep running instances on the old code, "
            "or guard the change with a version marker."
        )
        self.workflow_id = workflow_id
        self.position = position
        self.expected = expected
        self.found = found


class SandboxViolationError(WorkflowError):
    """Workflow code did something that breaks replay (I/O, wall clock, randomness)."""
