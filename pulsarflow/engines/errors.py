"""Conversion between Python exceptions and ``ErrorInfo`` records."""

from __future__ import annotations

import traceback

from pulsarflow.errors import (
    ChildWorkflowFailedError,
    ErrorInfo,
    SignalTimeoutError,
    TaskFailedError,
    TaskTimeoutError,
    WorkflowCancelledError,
)
from pulsarflow.messages import state as kinds

MAX_CAUSES = 8


def error_info(exc: BaseException, task_name: str | None = None, attempts: int = 0,
               workflow_id: str | None = None, depth: int = 0) -> ErrorInfo:
    """Describe ``exc`` with its traceback text and its cause chain."""
    remote = getattr(exc, "error", None)
    cause: ErrorInfo | None = remote if isinstance(remote, ErrorInfo) else None
    nested = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    if cause is None and nested is not None and depth < MAX_CAUSES:
        cause = error_info(nested, depth=depth + 1)
    return ErrorInfo(
        type=type(exc).__name__,
        message=str(exc),
        traceback="".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
        task_name=task_name,
        attempts=attempts,
        workflow_id=workflow_id,
        cause=cause,
    )


CANCELLED = WorkflowCancelledError.__name__  # type of the outcome a cancel records for pending steps


def is_own_cancellation(info: ErrorInfo | None, workflow_id: str) -> bool:
    """Whether ``info`` is the outcome this workflow's own cancel recorded (not a child's cancellation)."""
    return info is not None and info.type == CANCELLED and info.workflow_id == workflow_id


def step_exception(kind: str, info: ErrorInfo, workflow_id: str) -> BaseException:
    """The exception workflow ``workflow_id`` sees when its step of ``kind`` failed with ``info``."""
    if is_own_cancellation(info, workflow_id):
        return WorkflowCancelledError(workflow_id, info)
    if kind == kinds.TASK:
        return TaskTimeoutError(info) if info.type == "TaskTimeoutError" else TaskFailedError(info)
    if kind == kinds.CHILD:
        return ChildWorkflowFailedError(info)
    if kind == kinds.SIGNAL:
        return SignalTimeoutError(info.message)
    return RuntimeError(f"{info.type}: {info.message}")
