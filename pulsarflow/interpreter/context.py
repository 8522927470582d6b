"""``WorkflowContext``: everything a workflow may do, each call a recorded, replayable step."""

from __future__ import annotations

import datetime as dt
import hashlib
import random as _random
import uuid
from collections.abc import Callable
from typing import Any, NoReturn, Protocol

from pulsarflow.errors import DefinitionError
from pulsarflow.interpreter.definitions import (
    Duration,
    RetryPolicy,
    check_priority,
    positional_arguments,
    task_definition,
    to_ms,
    workflow_definition,
)
from pulsarflow.interpreter.names import check_name
from pulsarflow.interpreter.requests import (
    ChildRequest,
    SideEffectRequest,
    SignalRequest,
    StepRequest,
    TaskRequest,
    TimerRequest,
)
from pulsarflow.interpreter.steps import AllOf, AnyOf, Awaitable, Step


class Scheduler(Protocol):
    """What a WorkflowContext asks of the interpreter running the code (interpreter.replay.Replay)."""

    now_ms: int  # the replay's deterministic time
    queries: dict[str, Callable[..., Any]]
    updates: dict[str, Callable[..., Any]]

    @property
    def history_length(self) -> int: ...

    def issue(self, request: StepRequest) -> Step: ...

    def patch(self, name: str, deprecated: bool = False) -> bool: ...

    def encode_args(self, args: tuple[Any, ...], target: str) -> bytes: ...


class ContinueAsNew(BaseException):
    """Raised by ``ctx.continue_as_new``: end this run and start the workflow afresh with ``args``.

    A BaseException, so that ``except Exception`` in workflow code does not swallow it.
    """

    def __init__(self, args: tuple[Any, ...]) -> None:
        super().__init__("continue as new")
        self.args_for_next_run = args


class WorkflowContext:
    """Passed as first argument to every workflow. Only its methods may wait, read time or randomness."""

    def __init__(self, replay: Scheduler, workflow_id: str, workflow_name: str) -> None:
        self._replay = replay
        self.workflow_id = workflow_id
        self.workflow_name = workflow_name
        self._uuids = 0
        self._random: _random.Random | None = None

    def now(self) -> dt.datetime:
        """Deterministic current time: when the event being replayed was first processed (UTC)."""
        return dt.datetime.fromtimestamp(self._replay.now_ms / 1000, tz=dt.timezone.utc)

    def task(self, fn: Callable[..., Any], *args: Any, retry: RetryPolicy | None = None,
             timeout: Duration | None = None, overall_timeout: Duration | None = None,
             priority: int | None = None, **kwargs: Any) -> Step:
        """Start a task now; await the returned step for its result (or start several, then ctx.all).

        Arguments may be given by position or by keyword, as to a call of the function.
        ``priority`` overrides the task's own (``@task(priority=)``; docs/flow-control.md).
        """
        defn = task_definition(fn)
        values = positional_arguments(defn.fn, args, kwargs, skip_first=False)
        return self._replay.issue(TaskRequest(
            definition=defn, input=self._replay.encode_args(values, defn.name),
            retry=retry.spec() if retry else defn.retry,
            timeout_ms=to_ms(timeout) if timeout is not None else defn.timeout_ms,
            fire_at_ms=self._deadline(overall_timeout, defn.overall_timeout_ms),
            priority=defn.priority if priority is None else check_priority(priority),
        ))

    def child(self, wf: Callable[..., Any], *args: Any, timeout: Duration | None = None, abandon: bool = False,
              **kwargs: Any) -> Step:
        """Start a child workflow now; await the returned step for its result.

        When this workflow closes (completes, fails, is cancelled or continues as new), a
        child still running is cancelled; with ``abandon=True`` it runs on by itself.
        """
        defn = workflow_definition(wf)
        values = positional_arguments(defn.fn, args, kwargs, skip_first=True)
        return self._replay.issue(ChildRequest(
            definition=defn, input=self._replay.encode_args(values, defn.name),
            timeout_ms=to_ms(timeout) if timeout is not None else defn.timeout_ms, abandon=abandon,
        ))

    def sleep(self, duration: Duration) -> Step:
        """A durable timer: await it to sleep for ``duration`` (seconds or timedelta)."""
        return self._replay.issue(TimerRequest(self._replay.now_ms + (to_ms(duration) or 0)))

    def sleep_until(self, when: dt.datetime) -> Step:
        """A durable timer firing at ``when`` (a timezone-aware datetime)."""
        if when.tzinfo is None:
            raise ValueError("sleep_until needs a timezone-aware datetime, e.g. datetime.now(timezone.utc)")
        return self._replay.issue(TimerRequest(int(when.timestamp() * 1000)))

    def wait_signal(self, name: str, timeout: Duration | None = None, type: Any = None) -> Step:
        """Wait for the signal ``name``; raises SignalTimeoutError if ``timeout`` passes first."""
        name = check_name("the name of a signal to wait for", name)
        return self._replay.issue(SignalRequest(name, self._deadline(timeout, None), value_type=type))

    async def side_effect(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` once, record its result, and return the recorded result on every replay."""
        return await self._replay.issue(SideEffectRequest(getattr(fn, "__name__", "fn"), fn))

    def patched(self, name: str) -> bool:
        """Version a change: True on runs that reach this point with the new code, False on older ones.

        Write ``if ctx.patched("fraud-check"): <new code> else: <old code>``. Workflows already
        running when the change is deployed keep replaying the old branch; new runs (and old
        runs past the point they had reached) take the new one. Once no run can still be on
        the old branch, replace the call with ``ctx.deprecate_patch(name)`` and drop the old code.
        """
        return self._replay.patch(check_name("a patch name", name))

    def deprecate_patch(self, name: str) -> None:
        """Keep histories that recorded patch ``name`` replayable once its old branch is gone."""
        self._replay.patch(check_name("a patch name", name), deprecated=True)

    def on_query(self, name: str, handler: Callable[..., Any]) -> None:
        """Answer query ``name`` with ``handler(*args)``: read state, never change it or wait.

        Clients call ``client.query(workflow_id, name, *args)``; the workflow is replayed to
        its current point and the handler declared last is called. Nothing is recorded.
        """
        self._replay.queries[check_name("a query name", name)] = _callable(handler, f"query {name!r}")

    def on_update(self, name: str, handler: Callable[..., Any]) -> None:
        """Handle update ``name`` with ``handler(*args)``: it may change the workflow's variables and
        returns the client's answer (raise to refuse it). It must not wait or do I/O.

        Clients call ``client.update(workflow_id, name, *args)``; the update is recorded in
        the history, so every replay applies it again at the same point.
        """
        self._replay.updates[check_name("an update name", name)] = _callable(handler, f"update {name!r}")

    @property
    def history_length(self) -> int:
        """Steps recorded so far in this run; continue as new well before it reaches thousands."""
        return self._replay.history_length

    def continue_as_new(self, *args: Any) -> NoReturn:
        """End this run and start again with ``args``, same workflow id, empty history.

        Long-lived loops call it every so many iterations so that their history (replayed
        at every step) stays small. Signals received and not yet consumed carry over;
        waiting clients get the final result of the last run. Steps still pending in the
        old run are released: its tasks are told to stop and its children are cancelled
        (unless started with ``abandon=True``); their outcomes are ignored.
        """
        raise ContinueAsNew(args)

    def all(self, *steps: Awaitable) -> AllOf:
        """Await every step; returns their results in order, or raises the first failure.

        Members may be steps or other ``ctx.all``/``ctx.any``, at any depth.
        """
        return AllOf(_steps(steps, "all"))

    def any(self, *steps: Awaitable, cancel_losers: bool = False) -> AnyOf:
        """Await the first step to finish; returns its result (or raises its error).

        Keep the returned object to learn which member won: after ``await``, ``.winner``
        is that member and ``.index`` its place. The others are released: abandoned
        signal waits take no signal, and an unawaited timer does nothing; tasks and
        children keep running (and stay awaitable) unless ``cancel_losers=True``, or
        until the code calls ``step.cancel()``.
        """
        return AnyOf(_steps(steps, "any"), cancel_losers=cancel_losers)

    def uuid4(self) -> uuid.UUID:
        """A deterministic UUID, the same on every replay."""
        self._uuids += 1
        digest = hashlib.sha256(f"{self.workflow_id}/uuid/{self._uuids}".encode()).digest()
        return uuid.UUID(bytes=digest[:16], version=4)

    def random(self) -> _random.Random:
        """A random generator seeded by the workflow id: the same sequence on every replay."""
        if self._random is None:
            seed = int.from_bytes(hashlib.sha256(self.workflow_id.encode()).digest()[:8], "big")
            self._random = _random.Random(seed)
        return self._random

    def _deadline(self, duration: Duration | None, default_ms: int | None) -> int | None:
        ms = to_ms(duration) if duration is not None else default_ms
        return None if ms is None else self._replay.now_ms + ms


def _callable(handler: Any, what: str) -> Callable[..., Any]:
    if not callable(handler):
        raise DefinitionError(f"the handler of {what} must be a function, got {type(handler).__name__}")
    return handler  # type: ignore[no-any-return]


def _steps(steps: tuple[Any, ...], what: str) -> list[Awaitable]:
    flat: list[Any] = list(steps[0]) if len(steps) == 1 and isinstance(steps[0], (list, tuple)) else list(steps)
    for s in flat:
        if not isinstance(s, Awaitable):
            raise TypeError(f"ctx.{what}() takes steps returned by ctx.task/child/sleep/wait_signal or other "
                            f"ctx.all/ctx.any, got {s!r}")
    if what == "any" and not flat:
        raise TypeError("ctx.any() needs at least one step (it would wait forever)")
    return flat
