"""The ``@task`` and ``@workflow`` decorators and the frozen definitions they attach.

A decorated function stays a plain function (call it directly in unit tests); the
decorator only attaches a definition that workers, workflows and clients read.
"""

from __future__ import annotations

import datetime as dt
import inspect
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

from pulsarflow.errors import DefinitionError, qualified_name
from pulsarflow.messages import RetrySpec

F = TypeVar("F", bound=Callable[..., Any])

TASK_ATTR = "__pulsarflow_task__"
WORKFLOW_ATTR = "__pulsarflow_workflow__"

Duration = float | dt.timedelta


def to_ms(value: Duration | None) -> int | None:
    """Seconds (or a timedelta) as whole milliseconds."""
    if value is None:
        return None
    seconds = value.total_seconds() if isinstance(value, dt.timedelta) else float(value)
    if seconds < 0:
        raise DefinitionError(f"durations must not be negative, got {value!r}")
    return int(round(seconds * 1000))


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of a failing task: exponential backoff capped at ``max_delay``, with jitter.

    ``non_retryable`` lists exception types (or their names) that fail the task at once.
    """

    max_attempts: int = 3
    initial_delay: Duration = 1.0
    backoff_coefficient: float = 2.0
    max_delay: Duration = 60.0
    jitter: float = 0.2
    non_retryable: Iterable[type[BaseException] | str] = field(default=())

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise DefinitionError(f"RetryPolicy.max_attempts must be at least 1, got {self.max_attempts}")
        if not 0 <= self.jitter <= 1:
            raise DefinitionError(f"RetryPolicy.jitter must be between 0 and 1, got {self.jitter}")
        if self.backoff_coefficient < 1:
            raise DefinitionError(
                f"RetryPolicy.backoff_coefficient must be at least 1, got {self.backoff_coefficient}")

    def spec(self) -> RetrySpec:
        names = tuple(t if isinstance(t, str) else qualified_name(t) for t in self.non_retryable)
        return RetrySpec(
            max_attempts=self.max_attempts,
            initial_delay_ms=to_ms(self.initial_delay) or 0,
            backoff_coefficient=self.backoff_coefficient,
            max_delay_ms=to_ms(self.max_delay) or 0,
            jitter=self.jitter,
            non_retryable=names,
        )




@dataclass(frozen=True)
class TaskDefinition:
    name: str
    service: str
    fn: Callable[..., Any]
    retry: RetrySpec
    timeout_ms: int | None
    overall_timeout_ms: int | None
    is_async: bool
    arg_hints: tuple[Any, ...]
    return_hint: Any
    heartbeat_timeout_ms: int | None = None  # an attempt silent this long fails (pulsarflow.heartbeat)
    priority: int = 0  # higher starts first among attempts held back by flow control (docs/flow-control.md)


def check_priority(priority: object) -> int:
    """A task priority: a whole number (Avro int), higher first."""
    if isinstance(priority, bool) or not isinstance(priority, int) or not -2**31 <= priority < 2**31:
        raise DefinitionError(f"priority must be a whole number (higher starts first; default 0), got {priority!r}")
    return priority


@dataclass(frozen=True)
class WorkflowDefinition:
    name: str
    fn: Callable[..., Any]
    timeout_ms: int | None
    arg_hints: tuple[Any, ...]
    return_hint: Any
    failure_exceptions: tuple[type[BaseException], ...] = ()


@overload
def task(fn: F, *, name: str | None = None, service: str = "default", retry: RetryPolicy | None = None,
         timeout: Duration | None = None, overall_timeout: Duration | None = None,
         heartbeat_timeout: Duration | None = None, priority: int = 0) -> F: ...


@overload
def task(fn: None = None, *, name: str | None = None, service: str = "default", retry: RetryPolicy | None = None,
         timeout: Duration | None = None, overall_timeout: Duration | None = None,
         heartbeat_timeout: Duration | None = None, priority: int = 0) -> Callable[[F], F]: ...


def task(
    fn: F | None = None,
    *,
    name: str | None = None,
    service: str = "default",
    retry: RetryPolicy | None = None,
    timeout: Duration | None = None,
    overall_timeout: Duration | None = None,
    heartbeat_timeout: Duration | None = None,
    priority: int = 0,
) -> Any:
    """Declare a task: ``@task`` or ``@task(service="payments", retry=RetryPolicy(...))``.

    ``timeout`` bounds one attempt; ``overall_timeout`` bounds all attempts and retries;
    with ``heartbeat_timeout`` an attempt that calls ``pulsarflow.heartbeat()`` less often
    than that fails (HeartbeatTimeoutError) and is retried. ``priority`` (a whole number, higher
    first) orders the attempts of its service that flow control holds back (docs/flow-control.md).
    """
    check_priority(priority)
    if heartbeat_timeout is not None and (to_ms(heartbeat_timeout) or 0) <= 0:
        raise DefinitionError(f"heartbeat_timeout must be a positive duration, got {heartbeat_timeout!r}")

    def decorate(f: F) -> F:
        if not callable(f) or inspect.isclass(f):
            raise DefinitionError(f"@task decorates functions, got {f!r}")
        hints, ret = _signature_hints(f, skip_first=False)
        setattr(f, TASK_ATTR, TaskDefinition(
            name=name or f.__qualname__, service=service, fn=f,
            retry=(retry or RetryPolicy()).spec(), timeout_ms=to_ms(timeout),
            overall_timeout_ms=to_ms(overall_timeout),
            is_async=inspect.iscoroutinefunction(f), arg_hints=hints, return_hint=ret,
            heartbeat_timeout_ms=to_ms(heartbeat_timeout), priority=priority,
        ))
        return f

    return decorate(fn) if fn is not None else decorate


@overload
def workflow(fn: F, *, name: str | None = None, timeout: Duration | None = None,
             failure_exceptions: Iterable[type[BaseException]] = ()) -> F: ...


@overload
def workflow(fn: None = None, *, name: str | None = None, timeout: Duration | None = None,
             failure_exceptions: Iterable[type[BaseException]] = ()) -> Callable[[F], F]: ...


def workflow(fn: F | None = None, *, name: str | None = None, timeout: Duration | None = None,
             failure_exceptions: Iterable[type[BaseException]] = ()) -> Any:
    """Declare a workflow: an ``async def`` whose first parameter is the WorkflowContext.

    An exception the code lets through fails the workflow when it is a task or child
    failure, a cancellation, a timeout, an ``ApplicationError``, or an instance of one of
    ``failure_exceptions``. Any other exception is taken for a bug: the run is blocked
    (it stays RUNNING, shows why) and resumes when fixed code is deployed.
    """
    failures = tuple(failure_exceptions)
    for t in failures:
        if not (isinstance(t, type) and issubclass(t, BaseException)):
            raise DefinitionError(f"failure_exceptions takes exception classes, got {t!r}")

    def decorate(f: F) -> F:
        if not inspect.iscoroutinefunction(f):
            raise DefinitionError(
                f"workflow {f.__qualname__!r} must be declared with 'async def' and take the "
                "WorkflowContext as first parameter: async def my_workflow(ctx, ...)"
            )
        if not inspect.signature(f).parameters:
            raise DefinitionError(f"workflow {f.__qualname__!r} must take the WorkflowContext as first parameter")
        hints, ret = _signature_hints(f, skip_first=True)
        setattr(f, WORKFLOW_ATTR, WorkflowDefinition(
            name=name or f.__qualname__, fn=f, timeout_ms=to_ms(timeout), arg_hints=hints, return_hint=ret,
            failure_exceptions=failures,
        ))
        return f

    return decorate(fn) if fn is not None else decorate


def task_definition(obj: Any) -> TaskDefinition:
    """The definition attached by ``@task``; a clear error for anything else."""
    defn = getattr(obj, TASK_ATTR, None)
    if isinstance(defn, TaskDefinition):
        return defn
    if getattr(obj, WORKFLOW_ATTR, None) is not None:
        raise DefinitionError(f"{_label(obj)} is a workflow, not a task: start it with ctx.child(...)")
    raise DefinitionError(f"{_label(obj)} is not a task: decorate it with @pulsarflow.task")


def workflow_definition(obj: Any) -> WorkflowDefinition:
    """The definition attached by ``@workflow``; a clear error for anything else."""
    defn = getattr(obj, WORKFLOW_ATTR, None)
    if isinstance(defn, WorkflowDefinition):
        return defn
    if getattr(obj, TASK_ATTR, None) is not None:
        raise DefinitionError(f"{_label(obj)} is a task, not a workflow: call it from a workflow with ctx.task(...)")
    raise DefinitionError(f"{_label(obj)} is not a workflow: decorate it with @pulsarflow.workflow")


def _label(obj: Any) -> str:
    return repr(getattr(obj, "__qualname__", obj))


def _signature_hints(f: Callable[..., Any], skip_first: bool) -> tuple[tuple[Any, ...], Any]:
    try:
        hints = typing.get_type_hints(f)
    except Exception:  # unresolvable forward references: decode as plain JSON
        hints = {}
    params = list(inspect.signature(f).parameters.values())[1 if skip_first else 0:]
    return tuple(hints.get(p.name) for p in params), hints.get("return")


def positional_arguments(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                         skip_first: bool) -> tuple[Any, ...]:
    """``args`` and ``kwargs`` of a call to ``fn`` as the positional values that travel in messages.

    Keyword arguments of ordinary parameters are put in their place; a parameter skipped
    before a later one takes its default. Keyword-only parameters and ``**kwargs`` cannot
    travel by position: they are refused with the fix.
    """
    if not kwargs:
        return args
    params = list(inspect.signature(fn).parameters.values())[1 if skip_first else 0:]
    label = getattr(fn, "__qualname__", repr(fn))
    try:
        bound = inspect.Signature(params).bind(*args, **kwargs)
    except TypeError as exc:
        raise DefinitionError(f"bad arguments for {label!r}: {exc}") from None
    ordinary = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    for p in params:
        if p.name in bound.arguments and p not in ordinary and p.kind != p.VAR_POSITIONAL:
            raise DefinitionError(f"{label!r} takes {p.name!r} as a keyword-only argument (or **kwargs), which "
                                  "pulsarflow cannot pass yet; make it an ordinary parameter (before any '*')")
    last = max(i for i, p in enumerate(ordinary) if p.name in bound.arguments)
    values = []
    for p in ordinary[:last + 1]:
        if p.name in bound.arguments:
            values.append(bound.arguments[p.name])
        elif p.default is not p.empty:
            values.append(p.default)
    extra = next((bound.arguments[p.name] for p in params if p.kind == p.VAR_POSITIONAL and p.name in bound.arguments),
                 ())
    return (*values, *extra)
