"""OpenTelemetry traces and interceptors: one trace from ``client.start`` through every step.

With the ``opentelemetry-api`` package installed (``pulsarflow[otel]``; no exporter is
required, the application configures one if it wants the spans), pulsarflow makes:

- ``pulsarflow.start <workflow>`` in the client, whose context travels in the start as a
  W3C ``traceparent`` and is kept in the workflow's state, then passed to its tasks and
  children;
- ``pulsarflow.workflow <message>`` for each message the workflow engine decides on, and
  ``pulsarflow.task <task>`` for each task attempt, all in that trace.

Without the package every call here does nothing. Interceptors wrap the same places for
your own logging and metrics: ``add_task_interceptor(fn)`` with ``fn(info, call)`` around
each task attempt (``info`` is the TaskInfo, ``call()`` runs the task and returns its
result), ``add_decision_interceptor(fn)`` with ``fn(workflow_id, message_type, call)``
around each decision of the workflow engine. They apply to the whole process, in the
order added (the first added is the outermost).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any

try:
    from opentelemetry import trace as _trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ImportError:  # pragma: no cover - depends on the installed extras
    _trace = None  # type: ignore[assignment]
    TraceContextTextMapPropagator = None  # type: ignore[assignment,misc]

TaskInterceptor = Callable[[Any, Callable[[], Any]], Any]
DecisionInterceptor = Callable[[str, str, Callable[[], Any]], Any]
_log = logging.getLogger(__name__)
_task_interceptors: list[TaskInterceptor] = []
_decision_interceptors: list[DecisionInterceptor] = []


def add_task_interceptor(fn: TaskInterceptor) -> None:
    _task_interceptors.append(fn)


def add_decision_interceptor(fn: DecisionInterceptor) -> None:
    _decision_interceptors.append(fn)


def clear_interceptors() -> None:
    _task_interceptors.clear()
    _decision_interceptors.clear()


def intercept_task(info: Any, call: Callable[[], Any]) -> Any:
    for fn in reversed(_task_interceptors):
        call = (lambda f, inner: lambda: f(info, inner))(fn, call)
    return call()


def intercept_decision(workflow_id: str, message_type: str, call: Callable[[], Any]) -> Any:
    """The engine's decision, through the decision interceptors, which observe it but cannot change it.

    The decision is computed once, whatever the interceptors do: one that raises (before or
    after calling on), calls on twice or returns something else is logged and passed over,
    so a bug in a metrics hook never fails or dead-letters a workflow's messages. An
    error of the engine itself still propagates.
    """
    if not _decision_interceptors:
        return call()
    made: list[Any] = []

    def decide() -> Any:
        if not made:
            made.append(call())
        return made[0]

    chain = decide
    for fn in reversed(_decision_interceptors):
        chain = _guarded(fn, workflow_id, message_type, chain, made)
    chain()
    return decide()


def _guarded(fn: DecisionInterceptor, workflow_id: str, message_type: str, inner: Callable[[], Any],
             made: list[Any]) -> Callable[[], Any]:
    def run() -> Any:
        engine_error: list[BaseException] = []

        def on() -> Any:
            try:
                return inner()
            except BaseException as exc:
                engine_error.append(exc)
                raise

        try:
            returned = fn(workflow_id, message_type, on)
        except Exception:
            if engine_error:
                raise engine_error[0] from None  # the engine's own error, not the interceptor's
            _log.exception("decision interceptor %r raised on %s for %r; the decision goes on without it",
                           fn, message_type, workflow_id)
            return made[0] if made else inner()
        if engine_error:  # the interceptor swallowed the engine's error: it is not hidden
            raise engine_error[0]
        if not made:
            _log.warning("decision interceptor %r did not call on; the decision is made without it", fn)
            return inner()
        if returned is not made[0]:
            _log.warning("decision interceptor %r returned %s instead of the decision; the decision is kept",
                         fn, type(returned).__name__)
        return made[0]

    return run


def current_traceparent() -> str | None:
    """The W3C traceparent of the current span, to put in a message (None without OpenTelemetry or a span)."""
    if _trace is None:
        return None
    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    return carrier.get("traceparent")


_NO_SPAN = contextlib.nullcontext()


def span(name: str, parent: str | None = None, kind: str = "INTERNAL",
         **attributes: Any) -> contextlib.AbstractContextManager[None]:
    """A span named ``name``, child of the ``parent`` traceparent (else of the current span).

    With no tracer provider set and no parent given, a span would be a non-recording one
    carrying the current context on: the same as no span, so none is made (the API's
    no-op path costs a tenth of a message's handling).
    """
    if _trace is None or (parent is None and isinstance(_trace.get_tracer_provider(), _trace.ProxyTracerProvider)):
        return _NO_SPAN
    return _recorded(name, parent, kind, attributes)


@contextlib.contextmanager
def _recorded(name: str, parent: str | None, kind: str, attributes: dict[str, Any]) -> Iterator[None]:
    assert _trace is not None
    context = TraceContextTextMapPropagator().extract({"traceparent": parent}) if parent else None
    tracer = _trace.get_tracer("pulsarflow")
    clean = {k: v for k, v in attributes.items() if isinstance(v, (str, int, float, bool))}
    with tracer.start_as_current_span(name, context=context, kind=getattr(_trace.SpanKind, kind),
                                      attributes=clean):
        yield
