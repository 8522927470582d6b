"""Deterministic replay of workflow code against its recorded history.

The workflow coroutine is run from the start. Each ``ctx`` call issues a step at the
next position; recorded positions are checked against the code (a mismatch is a
:class:`NonDeterminismError`), new ones are collected for the engine to dispatch.
Recorded arrivals (step outcomes, updates and signals) are applied one by one, in their
original order, and only while the code is blocked: the first run and every replay see
the same sequence.

Signals are events of the history, not outcomes of a position: a received signal is
buffered, and a buffered signal is taken by a signal wait only while the code awaits that
wait (alone, or inside ``ctx.all``/``ctx.any`` at any depth), oldest signal first. A wait
the code abandoned (the loser of an ``any``) claims nothing; the signal stays buffered
for the next wait of that name. Which wait took which signal follows from the history
alone, so every replay decides the same.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from pulsarflow.converter import PayloadConverter, decode_one
from pulsarflow.errors import (
    NonDeterminismError,
    SandboxViolationError,
    SerializationError,
    UpdateRejectedError,
)
from pulsarflow.failures import error_info, step_exception
from pulsarflow.interpreter import sandbox
from pulsarflow.interpreter.context import WorkflowContext
from pulsarflow.interpreter.definitions import WorkflowDefinition
from pulsarflow.interpreter.requests import (
    CancelRequest,
    ChildRequest,
    PatchRequest,
    SignalRequest,
    StepRequest,
    TaskRequest,
)
from pulsarflow.interpreter.steps import Awaitable, Step
from pulsarflow.messages import Arrival, BufferedSignal, Command, WorkflowState
from pulsarflow.messages import state as kinds

OnNewStep = Callable[[int, StepRequest, int], Arrival | None]


class Replay:
    """Runs one workflow's code over its history; the engine reads the outcome fields."""

    def __init__(self, state: WorkflowState, definition: WorkflowDefinition,
                 converter: PayloadConverter, on_new_step: OnNewStep, partial_history: bool = False) -> None:
        self.state = state
        self.definition = definition
        self.converter = converter
        self.on_new_step = on_new_step
        self.now_ms = state.started_at_ms
        self.steps: list[tuple[Step, StepRequest]] = []
        self.queries: dict[str, Callable[..., Any]] = {}  # declared by ctx.on_query while replaying
        self.updates: dict[str, Callable[..., Any]] = {}  # declared by ctx.on_update while replaying
        self.update_outcomes: dict[str, Arrival] = {}  # update id -> its result (value or error)
        self.issued_at: list[int] = []  # replay time at which each step was issued
        self.partial_history = partial_history  # recorded steps past the last arrival may go unreached
        self.new_arrivals: list[Arrival] = []
        self.queue: deque[Arrival] = deque(state.arrivals)
        self.buffered: list[BufferedSignal] = list(state.buffered_signals)  # received, not yet taken
        self.applied = 0
        self.finished = False
        self.result: Any = None
        self.error: BaseException | None = None
        self.fatal: BaseException | None = None  # not catchable by workflow code
        self._waiting: Awaitable | None = None

    @property
    def new_steps(self) -> Sequence[tuple[Step, StepRequest]]:
        return self.steps[len(self.state.commands):]

    def run(self) -> None:
        ctx = WorkflowContext(self, self.state.workflow_id, self.state.workflow_name)
        try:
            args = self.converter.decode(self.state.input, self.definition.arg_hints)
        except SerializationError as exc:
            self._finish(error=exc)
            return
        self._coro = self.definition.fn(ctx, *args)
        self._advance()
        self._drain()

    def resume(self, state: WorkflowState, on_new_step: OnNewStep) -> None:
        """Go on from where the last run or resume stopped, over the arrivals ``state`` adds.

        ``state`` must be the state that last run left (its commands, and its arrivals
        followed by the new ones): the workflow cache checks that before it resumes.
        """
        taken = self.consumed
        self.state, self.on_new_step = state, on_new_step
        self.new_arrivals, self.update_outcomes = [], {}
        self.queue.extend(state.arrivals[taken:])
        self._drain()

    @property
    def consumed(self) -> int:
        """How many arrivals of the history this replay has taken in (recorded ones and its own new ones)."""
        return len(self.state.arrivals) + len(self.new_arrivals)

    def _drain(self) -> None:
        while self.queue and not self.finished and self.fatal is None:
            self._apply(self.queue.popleft())
        self._check_all_recorded_issued()
        if self.fatal is not None:
            self.finished, self.error = True, self.fatal

    def issue(self, request: StepRequest) -> Step:
        position = len(self.steps)
        step = Step(position, self._cancel)
        recorded = self.state.commands
        if position < len(recorded):
            expected = recorded[position]
            if (expected.kind, expected.name) != (request.kind, request.name):
                found = Command(position, request.kind, request.name).describe()
                self._fail_fatal(NonDeterminismError(self.state.workflow_id, position, expected.describe(), found))
        self.steps.append((step, request))
        self.issued_at.append(self.now_ms)
        if position >= len(recorded) and self.fatal is None:
            immediate = self.on_new_step(position, request, self.now_ms)
            if immediate is not None:
                self.new_arrivals.append(immediate)
                self.queue.append(immediate)
        return step

    def patch(self, name: str, deprecated: bool = False) -> bool:
        """Whether this run takes the code path after patch ``name`` (see ``WorkflowContext.patched``).

        A history recorded past this point by code without the patch has no marker here:
        the old path is taken and no position is used. New history records the marker.
        """
        position = len(self.steps)
        recorded = self.state.commands
        if position < len(recorded):
            marker = recorded[position]
            if (marker.kind, marker.name) != (kinds.PATCH, name):
                return False
        elif deprecated:
            return True
        step = Step(position)
        step.resolve(True, None, -1)
        request = PatchRequest(name)
        self.steps.append((step, request))
        self.issued_at.append(self.now_ms)
        if position >= len(recorded):
            self.on_new_step(position, request, self.now_ms)
        return True

    def _cancel(self, step: Step) -> None:
        """``step.cancel()``: a CANCEL command; the engine records the step's cancellation outcome."""
        self.issue(CancelRequest(step.position))

    @property
    def history_length(self) -> int:
        """Steps issued so far in this run."""
        return len(self.steps)

    @property
    def stopped_at(self) -> int:
        """The history position where the code stopped: where a blocked run is stuck."""
        return getattr(self.fatal, "position", len(self.steps))

    def encode_args(self, args: tuple[Any, ...], target: str) -> bytes:
        try:
            return self.converter.encode(args)
        except SerializationError as exc:
            raise SerializationError(f"arguments of {target!r} cannot be serialized: {exc}") from exc

    def _apply(self, arrival: Arrival) -> None:
        if arrival.update is not None:
            self._apply_update(arrival)
            return
        if arrival.signal is not None:
            self.now_ms = arrival.at_ms
            self.buffered.append(arrival.signal)
            self._feed_waiting()
            return
        if arrival.position >= len(self.steps):
            self._record_fatal(NonDeterminismError(
                self.state.workflow_id, arrival.position, self.state.commands[arrival.position].describe(),
                "no such step (the code no longer reaches it)"))
            return
        step, request = self.steps[arrival.position]
        if step.done:  # a signal wait that took a buffered signal: its later timeout changes nothing
            return
        self.now_ms = arrival.at_ms
        if arrival.error is not None:
            step.resolve(None, step_exception(request.kind, arrival.error, self.state.workflow_id), self.applied)
        else:
            decoded = self._decoded(request, arrival.value, arrival.position, "outcome")
            if self.fatal is not None:
                return
            step.resolve(decoded, None, self.applied)
        self.applied += 1
        if self._waiting is not None and self._waiting.ready():
            self._advance()

    def _feed_waiting(self) -> None:
        """Give buffered signals to the waits the code awaits now, one at a time, then run on."""
        waiting = self._waiting
        if waiting is None or self.finished:
            return
        while not waiting.ready():
            if not self._take_buffered(waiting):
                return
        self._advance()

    def _take_buffered(self, waiting: Awaitable) -> bool:
        """Resolve the first awaited wait of the oldest buffered signal that has one; False if none."""
        if not self.buffered:
            return False
        waits = [s for s in waiting.pending() if self.steps[s.position][1].kind == kinds.SIGNAL]
        for i, signal in enumerate(self.buffered):
            for step in waits:
                request = self.steps[step.position][1]
                if request.name == signal.name:
                    decoded = self._decoded(request, signal.data, step.position, f"signal {signal.signal_id!r}")
                    if self.fatal is not None:
                        return False
                    del self.buffered[i]
                    step.resolve(decoded, None, self.applied)
                    self.applied += 1
                    return True
        return False

    def _apply_update(self, arrival: Arrival) -> None:
        """Run the update's handler at its recorded place; its outcome is kept for the answer."""
        call = arrival.update
        assert call is not None
        self.now_ms = arrival.at_ms
        handler = self.updates.get(call.name)
        if handler is None:
            error = UpdateRejectedError(f"workflow {self.state.workflow_id!r} declares no update {call.name!r} at "
                                        f"this point; declared: {sorted(self.updates) or 'none'}")
            self.update_outcomes[call.update_id] = Arrival(-1, arrival.at_ms, error=error_info(error))
            return
        try:
            args = self.converter.decode(call.args, None)
            with sandbox.workflow_code(self.state.workflow_id, lambda violation: None):  # raised to the handler
                value = handler(*args)
            outcome = Arrival(-1, arrival.at_ms, value=self.converter.encode([value]))
        except Exception as exc:  # the handler refused it: the client gets the error, the workflow goes on
            outcome = Arrival(-1, arrival.at_ms, error=error_info(exc, workflow_id=self.state.workflow_id))
        self.update_outcomes[call.update_id] = outcome
        if self._waiting is not None and self._waiting.ready():
            self._advance()

    def _decoded(self, request: StepRequest, value: bytes | None, position: int, what: str) -> Any:
        """The value of an arrival for step ``position``; a value this process cannot decode blocks the run.

        A payload sealed with a key this process lacks, or that does not fit the step's type
        hint, is not the workflow's doing: the run stops there (blocked, its history kept) and
        goes on once a process that can read it (the key deployed, the code fixed) replays it.
        """
        try:
            return self._decode_value(request, value)
        except Exception as exc:
            error = SerializationError(
                f"workflow {self.state.workflow_id!r}: the {what} of step {position} ({request.kind} "
                f"{request.name!r}) cannot be decoded: {type(exc).__name__}: {exc}; the run waits here, keeping "
                "it, until a process that can read it replays it (the same payload codecs and keys, a type hint "
                "that fits)")
            error.position = position  # type: ignore[attr-defined]
            self._record_fatal(error)
            return None

    def _decode_value(self, request: StepRequest, value: bytes | None) -> Any:
        if value is None:
            return None
        hint: Any = None
        if isinstance(request, SignalRequest):
            hint = request.value_type
        elif isinstance(request, (TaskRequest, ChildRequest)):
            hint = request.definition.return_hint
        return decode_one(self.converter, value, hint)

    def _advance(self) -> None:
        while not self.finished:
            try:
                with sandbox.workflow_code(self.state.workflow_id, self._record_fatal):
                    awaited = self._coro.send(None)
            except StopIteration as stop:
                self._finish(result=stop.value)
                return
            except BaseException as exc:  # the workflow's own error ends it
                self._finish(error=_explain(exc, self.state.workflow_id))
                return
            if not isinstance(awaited, Awaitable):
                self._record_fatal(SandboxViolationError(
                    f"workflow {self.state.workflow_id!r} awaited {awaited!r}; a workflow may only await "
                    "ctx steps (ctx.task, ctx.sleep, ...); put asyncio code in a task."))
                self._coro.close()
                self._finish(error=self.fatal)
                return
            self._waiting = awaited
            while not awaited.ready():
                if not self._take_buffered(awaited):
                    return

    def _finish(self, result: Any = None, error: BaseException | None = None) -> None:
        self.finished, self.result, self.error = True, result, self.fatal or error

    def _record_fatal(self, exc: BaseException) -> None:
        if self.fatal is None:
            self.fatal = exc

    def _fail_fatal(self, exc: BaseException) -> None:
        self._record_fatal(exc)
        raise exc

    def _check_all_recorded_issued(self) -> None:
        recorded = self.state.commands
        if len(self.steps) < len(recorded) and self.fatal is None and not self.partial_history:
            position = len(self.steps)
            self.fatal = NonDeterminismError(
                self.state.workflow_id, position, recorded[position].describe(),
                "no step (the code now waits elsewhere or has returned)")


def _explain(exc: BaseException, workflow_id: str) -> BaseException:
    """Turn the usual symptom of asyncio inside a workflow into an error that says what to do."""
    if isinstance(exc, RuntimeError) and "no running event loop" in str(exc):
        error = SandboxViolationError(
            f"workflow {workflow_id!r} used asyncio (no event loop runs workflow code); a workflow may only "
            "await ctx steps (ctx.task, ctx.sleep, ...); put asyncio code in a task.")
        error.__cause__ = exc
        return error
    return exc
