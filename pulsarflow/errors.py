"""The one error hierarchy of pulsarflow.

::

    PulsarflowError
    ├── DefinitionError          a task or workflow is declared or used wrongly
    │   └── NotInTaskError       task_info() or heartbeat() called outside a running task
    ├── SerializationError       a payload cannot be encoded or decoded
    ├── DecodeError              bytes are not a valid Avro message of the expected schema
    │   └── NewerWriterError     written by a newer release (also a BackendError: retried, not dead-lettered)
    ├── SchemaError              a schema file is invalid or incompatible with its history
    ├── StateConflictError       a versioned state write lost a race
    ├── BackendError             a storage or transport backend failed (wraps the cause)
    │   ├── PartialBatchError    some messages of a batch met a backend failure (redeliver only those)
    │   └── PulsarAccessError    Pulsar unreachable, or refused the credentials (names the setting to fix;
    │                            defined in pulsarflow.pulsar.connection)
    ├── MessageRefusedError      a message that can never be handled as it is: dead-lettered with the reason
    │   ├── LimitExceededError   an id, key or payload is empty or over a documented limit (also raised by clients)
    │   └── TopicRefusedError    a topic a message names is not one of the app's own, or cannot exist
    ├── SearchError              a visibility search or command got bad input (filter, time, cursor)
    ├── WorkflowNotFoundError    no workflow has the requested id
    ├── ResultTimeoutError       a client stopped waiting for an answer
    ├── QueryFailedError         a workflow query could not be answered (carries why)
    │   └── UpdateFailedError    an update was rejected or its handler raised
    ├── UpdateRejectedError      the workflow declares no handler for an update (inside the engine)
    ├── ControlRefusedError      a cancel or retry was refused (the workflow is not in a state for it)
    ├── WorkflowBlockedError     a run cannot go on until its code is fixed (raised by fail-fast test runs)
    ├── ScheduleError            a schedule is specified wrongly (cron, interval, overlap) or its name is taken
    ├── ApplicationError         raised by task or workflow code to fail on purpose (non_retryable, next_retry_delay)
    ├── WorkflowFailedError      raised by the client: the workflow failed (carries the cause)
    │   └── WorkflowCancelledError   the workflow was cancelled (also raised at its pending steps)
    └── WorkflowError            raised inside workflow code, catchable by the workflow
        ├── TaskFailedError          a task failed for good
        │   └── TaskTimeoutError     a task ran past its overall timeout
        ├── ChildWorkflowFailedError a child workflow failed
        ├── SignalTimeoutError       no signal arrived in time
        ├── StepCancelledError       awaited a step the workflow cancelled itself
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


class NotInTaskError(DefinitionError, RuntimeError):
    """``pulsarflow.task_info()`` or ``pulsarflow.heartbeat()`` was called outside a running task
    (a RuntimeError too, as it was before it had a name of its own)."""


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


class NewerWriterError(DecodeError, BackendError):
    """Bytes written with a schema this release does not know: a newer release wrote them.

    Not the message's fault: during a rolling upgrade the upgraded instances read it, so the
    runtime retries it like an outage (it is a BackendError too) instead of dead-lettering it.
    """


class PartialBatchError(BackendError):
    """Some messages of a batch could not reach a backend; the others were handled.

    ``pending`` holds the positions (in the batch) of the messages to deliver again; the
    rest were handled or dead-lettered and must be acknowledged.
    """

    def __init__(self, message: str, pending: list[int]) -> None:
        super().__init__(message)
        self.pending = pending


class MessageRefusedError(PulsarflowError):
    """A message that can never be handled as it is (its own fault, not an outage).

    The runtime dead-letters it with this error's text as the reason, instead of retrying it;
    clients raise the subclasses before sending anything.
    """


class LimitExceededError(MessageRefusedError):
    """An id, key or payload is empty, malformed or over a documented limit (docs/reliability.md)."""


class TopicRefusedError(MessageRefusedError):
    """A topic a message names (a reply topic) is not one of the app's own topics, or cannot exist."""


class SearchError(PulsarflowError):
    """A visibility search or command was given bad input: a filter, a time, a cursor or a store URL."""


class WorkflowNotFoundError(PulsarflowError):
    """No workflow exists with the requested id."""


class ResultTimeoutError(PulsarflowError):
    """The client gave up waiting for an answer."""


ErrorType = type[BaseException] | str  # what ErrorInfo.matches takes: an exception class or its name


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """An error that happened elsewhere (a task, a child workflow), as carried in messages.

    ``type_hierarchy`` lists the qualified names of the exception's classes, its own first
    (builtins by bare name: ``UnicodeDecodeError``, ``ValueError``, ...), so that a record is
    matched like ``except`` matches (see :meth:`matches`). Records written before it existed
    have an empty hierarchy and match by ``type`` only.
    """

    type: str
    message: str
    traceback: str = ""
    task_name: str | None = None
    attempts: int = 0
    workflow_id: str | None = None
    cause: ErrorInfo | None = None
    type_hierarchy: tuple[str, ...] = ()
    non_retryable: bool = False
    next_retry_delay_ms: int | None = None

    def matches(self, *types: ErrorType) -> bool:
        """Whether the error is an instance of one of ``types`` (classes, or their names).

        A name matches a class of the hierarchy by its qualified name or by its last part,
        so ``"ValueError"``, ``ValueError`` and ``"shop.errors.PaymentDeclined"`` all work.
        """
        names = set(self.type_hierarchy or (self.type,))
        short = {n.rsplit(".", 1)[-1] for n in names}
        for t in types:
            if isinstance(t, str):
                if t in names or ("." not in t and t in short):
                    return True
            elif qualified_name(t) in names or t.__name__ in names:  # a bare name: builtins, or older records
                return True
        return False

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


def qualified_name(cls: type) -> str:
    """``module.QualName`` of a class; builtins by their bare name."""
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


class ApplicationError(PulsarflowError):
    """Raise it from a task or a workflow to fail on purpose.

    From a task: ``non_retryable=True`` fails the task at once, without retries;
    ``next_retry_delay`` (seconds) replaces the policy's backoff before the next attempt.
    From a workflow: it fails the workflow (any other unexpected exception blocks the run
    until fixed code is deployed; see docs/workflows.md). ``type`` names the failure for
    callers that match it (``err.matches("PaymentDeclined")``) without a class of their own.
    """

    def __init__(self, message: str, *, type: str | None = None, non_retryable: bool = False,
                 next_retry_delay: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.type = type
        self.non_retryable = non_retryable
        self.next_retry_delay = next_retry_delay


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


class WorkflowBlockedError(PulsarflowError):
    """A run is blocked: its code raised an unexpected error or no longer matches its history.

    The run is not failed: it stays RUNNING, keeps what arrives, and resumes by itself when
    fixed code is deployed (or on ``retry``). Raised at once by fail-fast test environments.
    """

    def __init__(self, workflow_id: str, position: int, reason: ErrorInfo) -> None:
        super().__init__(f"workflow {workflow_id!r} is blocked at step {position}: {reason.describe()}. It stays "
                         "RUNNING and resumes when code that can replay it is deployed (or on retry); raise "
                         "ApplicationError, or list the type in @workflow(failure_exceptions=...), to fail it instead")
        self.workflow_id = workflow_id
        self.position = position
        self.reason = reason

    @property
    def remote_traceback(self) -> str:
        return self.reason.traceback


class ScheduleError(PulsarflowError):
    """A schedule was given a bad cron expression, interval or overlap policy, or its name is taken."""


class WorkflowError(PulsarflowError):
    """Raised inside workflow code; workflows may catch it."""

    error: ErrorInfo | None = None

    def matches(self, *types: ErrorType) -> bool:
        """Whether the remote error behind this one (a task's or a child's) is one of ``types``."""
        return self.error is not None and self.error.matches(*types)


class TaskFailedError(WorkflowError):
    """A task failed after its retries. ``error`` holds the remote error."""

    error: ErrorInfo

    def __init__(self, error: ErrorInfo) -> None:
        if error.matches(TaskTimeoutError.__name__):
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

    error: ErrorInfo

    def __init__(self, error: ErrorInfo) -> None:
        super().__init__(error.describe())
        self.error = error


class SignalTimeoutError(WorkflowError):
    """No signal of the awaited name arrived before the timeout."""


class StepCancelledError(WorkflowError):
    """Raised by a step the workflow cancelled itself (``step.cancel()``, or ``ctx.any(..., cancel_losers=True)``)."""


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
