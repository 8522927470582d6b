"""The failure converter: exceptions to ``ErrorInfo`` records and back, in one place.

Every error that crosses a process boundary (a task's, a child's, a workflow's) is turned
into a record here, with the qualified names of its classes, so that retry policies and
workflow code match it like ``except`` does (subclasses included). Records come back as
the exceptions workflow code catches (:func:`step_exception`), and :func:`fails_workflow`
decides which exceptions end a workflow as FAILED; any other one blocks the run.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterable

from pulsarflow.errors import (
    ApplicationError,
    ChildWorkflowFailedError,
    ErrorInfo,
    SignalTimeoutError,
    StepCancelledError,
    TaskFailedError,
    TaskTimeoutError,
    WorkflowCancelledError,
    qualified_name,
)
from pulsarflow.messages import state as kinds

MAX_CAUSES = 8

CANCELLED = WorkflowCancelledError.__name__  # type of the outcome a cancel records for pending steps
STEP_CANCELLED = StepCancelledError.__name__  # type of the outcome step.cancel() records

# What ends a workflow as FAILED when its code lets it through; anything else blocks the run.
DEFAULT_FAILURES: tuple[type[BaseException], ...] = (
    TaskFailedError, ChildWorkflowFailedError, WorkflowCancelledError, SignalTimeoutError,
    StepCancelledError, ApplicationError,
)


def error_info(exc: BaseException, task_name: str | None = None, attempts: int = 0,
               workflow_id: str | None = None, depth: int = 0) -> ErrorInfo:
    """Describe ``exc`` with its classes, its traceback text and its cause chain."""
    remote = getattr(exc, "error", None)
    cause: ErrorInfo | None = remote if isinstance(remote, ErrorInfo) else None
    nested = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    if cause is None and nested is not None and depth < MAX_CAUSES:
        cause = error_info(nested, depth=depth + 1)
    hierarchy = hierarchy_of(type(exc))
    non_retryable, delay_ms, name = False, None, type(exc).__name__
    if isinstance(exc, ApplicationError):
        non_retryable = exc.non_retryable
        delay_ms = None if exc.next_retry_delay is None else int(exc.next_retry_delay * 1000)
        if exc.type:
            name, hierarchy = exc.type, (exc.type, *hierarchy)
    return ErrorInfo(
        type=name,
        message=str(exc),
        traceback="".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
        task_name=task_name,
        attempts=attempts,
        workflow_id=workflow_id,
        cause=cause,
        type_hierarchy=hierarchy,
        non_retryable=non_retryable,
        next_retry_delay_ms=delay_ms,
    )


def hierarchy_of(cls: type) -> tuple[str, ...]:
    """Qualified names of ``cls`` and its bases, nearest first, up to BaseException."""
    return tuple(qualified_name(c) for c in cls.__mro__ if issubclass(c, BaseException))


def is_own_cancellation(info: ErrorInfo | None, workflow_id: str) -> bool:
    """Whether ``info`` is the outcome this workflow's own cancel recorded (not a child's cancellation)."""
    return info is not None and info.type == CANCELLED and info.workflow_id == workflow_id


def step_exception(kind: str, info: ErrorInfo, workflow_id: str) -> BaseException:
    """The exception workflow ``workflow_id`` sees when its step of ``kind`` failed with ``info``."""
    if is_own_cancellation(info, workflow_id):
        return WorkflowCancelledError(workflow_id, info)
    if info.type == STEP_CANCELLED and info.workflow_id == workflow_id:
        error = StepCancelledError(info.message)
        error.error = info
        return error
    if kind == kinds.TASK:
        return TaskTimeoutError(info) if info.matches(TaskTimeoutError) else TaskFailedError(info)
    if kind == kinds.CHILD:
        return ChildWorkflowFailedError(info)
    if kind == kinds.SIGNAL:
        return SignalTimeoutError(info.message)
    return RuntimeError(f"{info.type}: {info.message}")


def is_retryable_ending(info: ErrorInfo) -> bool:
    """Whether a workflow that ended FAILED with ``info`` can be retried: a step failed and the code let it through."""
    return info.matches(TaskFailedError, ChildWorkflowFailedError)


def was_blocking_ending(info: ErrorInfo | None) -> bool:
    """Whether an older release failed a run with ``info`` where this one blocks it (retry replays it as it is)."""
    return info is not None and info.matches("NonDeterminismError", "SandboxViolationError", "DefinitionError")


def fails_workflow(exc: BaseException, failure_exceptions: Iterable[type[BaseException]] = ()) -> bool:
    """Whether ``exc``, let through by workflow code, ends the workflow as FAILED (else the run blocks)."""
    return isinstance(exc, (*DEFAULT_FAILURES, *failure_exceptions))
