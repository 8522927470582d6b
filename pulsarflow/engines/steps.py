"""Turns the new steps of one replay into messages (tasks, timers, children) or immediate outcomes."""

from __future__ import annotations

from pulsarflow.converter import PayloadConverter
from pulsarflow.engines import messages_out as out
from pulsarflow.engines.outgoing import Outgoing
from pulsarflow.errors import ErrorInfo
from pulsarflow.failures import STEP_CANCELLED, error_info
from pulsarflow.interpreter import sandbox
from pulsarflow.interpreter.requests import (
    CancelRequest,
    ChildRequest,
    SideEffectRequest,
    SignalRequest,
    StepRequest,
    TaskRequest,
    TimerRequest,
    abandons,
)
from pulsarflow.messages import (
    Arrival,
    Command,
    ExecuteTask,
    ParentRef,
    StartWorkflow,
    TimerFired,
    WorkflowState,
)
from pulsarflow.messages import workflow as purposes
from pulsarflow.messages.evolve import evolve
from pulsarflow.messages.state import child_workflow_id
from pulsarflow.topics import Topics


class StepDispatcher:
    """Collects the commands and messages for steps issued for the first time."""

    def __init__(self, topics: Topics, converter: PayloadConverter, state: WorkflowState) -> None:
        self.topics = topics
        self.converter = converter
        self.state = state
        self.commands: list[Command] = []
        self.outgoing: list[Outgoing] = []

    def on_new_step(self, position: int, request: StepRequest, now: int) -> Arrival | None:
        self.commands.append(Command(position, request.kind, request.name, abandon=abandons(request)))
        if isinstance(request, TaskRequest):
            self._task(position, request, now)
        elif isinstance(request, ChildRequest):
            self._child(position, request, now)
        elif isinstance(request, TimerRequest):
            self._timer(position, purposes.SLEEP, now, request.fire_at_ms)
        elif isinstance(request, SignalRequest):
            self._signal(position, request, now)
        elif isinstance(request, SideEffectRequest):
            return self._side_effect(position, request, now)
        elif isinstance(request, CancelRequest):
            return self._cancel(position, request, now)
        return None  # a version marker (PatchRequest) is recorded as a command only

    def redispatch(self, position: int, request: StepRequest, issued_at_ms: int, now: int) -> None:
        """Send again what an open step waits for, after a retry reopened the workflow.

        Tasks start over at attempt 1 and children are started again (a finished child
        answers at once); timeouts restart from now, a sleep keeps its wake-up time.
        """
        def restarted(deadline: int | None) -> int | None:
            return None if deadline is None else now + max(0, deadline - issued_at_ms)

        if isinstance(request, TaskRequest):
            self._task(position, request, now, restarted(request.fire_at_ms))
        elif isinstance(request, ChildRequest):
            self._child(position, request, now)
        elif isinstance(request, TimerRequest):
            self._timer(position, purposes.SLEEP, now, request.fire_at_ms)
        elif isinstance(request, SignalRequest) and request.fire_at_ms is not None:
            self._timer(position, purposes.SIGNAL_TIMEOUT, now, restarted(request.fire_at_ms))

    def _task(self, position: int, request: TaskRequest, now: int, timeout_at_ms: int | None = None) -> None:
        defn = request.definition
        task = ExecuteTask(
            workflow_id=self.state.workflow_id, position=position, service=defn.service, task_name=defn.name,
            input=request.input, attempt=1, first_attempt_at_ms=now, retry=request.retry,
            attempt_timeout_ms=request.timeout_ms, generation=self.state.generation, trace=self.state.trace,
            priority=request.priority,
        )
        self.outgoing.append(out.to_executor(self.topics, task, now))
        timeout_at_ms = request.fire_at_ms if timeout_at_ms is None else timeout_at_ms
        if timeout_at_ms is not None:
            self._timer(position, purposes.TASK_TIMEOUT, now, timeout_at_ms)

    def _child(self, position: int, request: ChildRequest, now: int) -> None:
        state = self.state
        child_id = child_workflow_id(state.workflow_id, state.runs, position)
        parent = ParentRef(state.workflow_id, position, state.generation)
        start = StartWorkflow(request.name, request.input, parent=parent, timeout_ms=request.timeout_ms,
                              trace=self.state.trace)
        self.outgoing.append(out.to_workflow(self.topics, child_id, start, now))

    def _timer(self, position: int, purpose: str, now: int, fire_at_ms: int | None) -> None:
        fired = TimerFired(position, purpose, self.state.generation)
        self.outgoing.append(out.to_workflow(self.topics, self.state.workflow_id, fired, now,
                                             deliver_at_ms=fire_at_ms, about=f":{purpose}"))

    def _signal(self, position: int, request: SignalRequest, now: int) -> None:
        """A wait takes its signal while the code awaits it (see engines/replay.py); only its timeout is armed."""
        if request.fire_at_ms is not None:
            self._timer(position, purposes.SIGNAL_TIMEOUT, now, request.fire_at_ms)

    def _cancel(self, position: int, request: CancelRequest, now: int) -> Arrival:
        """``step.cancel()``: the step's outcome is a cancellation; its task or child is told to stop."""
        target = request.target
        wid = self.state.workflow_id
        issued = evolve(self.state, commands=self.state.commands + tuple(self.commands))  # the target may be new
        error = ErrorInfo(STEP_CANCELLED, f"step {target} ({issued.commands[target].describe()}) was cancelled by "
                          "the workflow", workflow_id=wid)
        notice = out.stop_step(self.topics, issued, target, error.message, now)
        if notice is not None:
            self.outgoing.append(notice)
        return Arrival(target, now, error=error)

    def _side_effect(self, position: int, request: SideEffectRequest, now: int) -> Arrival:
        try:
            with sandbox.outside_workflow():
                value = request.call()
            return Arrival(position, now, value=self.converter.encode([value]))
        except Exception as exc:  # recorded, then raised inside the workflow on every replay
            return Arrival(position, now, error=error_info(exc, workflow_id=self.state.workflow_id))
