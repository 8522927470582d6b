"""The workflow engine, keyed by workflow id: one handler per message type.

Every handler is idempotent: a step outcome for a position that already has one, a
timer for a finished step, a signal id seen before and a second start of an existing
id change nothing (they may re-send an answer, which clients tolerate).

Nothing of a closed run runs afterwards: when a run completes, fails, is cancelled or
continues as new, its running tasks are told to stop and its children are cancelled
(unless started with ``abandon=True``); late outcomes, timers and task retries of that
run are ignored, since retries come back through this engine (``RetryTask``).

A run whose code cannot go on (it no longer matches its history, breaks the sandbox,
is not deployed, or raises an exception that is not a failure by the workflow's own
rules) is *blocked*, not failed: it stays RUNNING with the reason, keeps what arrives,
and is replayed again on its own backoff timer, on every message, and on ``retry``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pulsarflow.converter import NO_VALUE, PayloadConverter, decode_one
from pulsarflow.engines import live
from pulsarflow.engines import messages_out as out
from pulsarflow.engines.controls import MAX_RETRY_IDS, ControlHandlers
from pulsarflow.engines.lifecycle import release, unborn
from pulsarflow.engines.live import ArrivedPositions, LiveWorkflows
from pulsarflow.engines.outgoing import Decision, Outgoing
from pulsarflow.engines.steps import StepDispatcher
from pulsarflow.errors import DefinitionError, ErrorInfo
from pulsarflow.failures import CANCELLED, error_info, fails_workflow
from pulsarflow.interpreter.context import ContinueAsNew
from pulsarflow.interpreter.registry import Registry
from pulsarflow.interpreter.replay import Replay
from pulsarflow.messages import (
    AddTag,
    Arrival,
    Blocked,
    BufferedSignal,
    CancelWorkflow,
    ChildCompleted,
    ChildFailed,
    CompleteTask,
    GetWorkflowResult,
    GetWorkflowStatus,
    QueryWorkflow,
    RemoveTag,
    ReplyTo,
    RetryTask,
    RetryWorkflow,
    SendSignal,
    SignalAccepted,
    SignalWithStart,
    StartWorkflow,
    TaskCompleted,
    TaskFailed,
    TimerFired,
    UpdateWithStart,
    UpdateWorkflow,
    WorkflowEngineMessage,
    WorkflowNotFound,
    WorkflowState,
    WorkflowStatusReply,
)
from pulsarflow.messages import client as status
from pulsarflow.messages import state as kinds
from pulsarflow.messages import tags as tags_messages
from pulsarflow.messages import workflow as purposes
from pulsarflow.messages.evolve import evolve
from pulsarflow.messages.state import STATE_SCHEMA_VERSION, refusing
from pulsarflow.topics import Topics

State = WorkflowState | None
Result = Decision[WorkflowState]

MAX_RUNS_PER_MESSAGE = 1_000  # runs one message may start by continuing as new without waiting
UNBLOCK_FIRST_DELAY_MS = 1_000  # a blocked run is replayed again after 1 s, 2 s, 4 s, ... up to:
UNBLOCK_MAX_DELAY_MS = 300_000
_TIMER_KINDS = {purposes.SLEEP: kinds.TIMER, purposes.SIGNAL_TIMEOUT: kinds.SIGNAL, purposes.TASK_TIMEOUT: kinds.TASK}


class WorkflowEngine(ControlHandlers):
    """Pure: ``handle(state, envelope, now_ms)`` returns the new state and the messages to send."""

    input_type = WorkflowEngineMessage
    state_type = WorkflowState
    state_version = STATE_SCHEMA_VERSION

    def __init__(self, registry: Registry, converter: PayloadConverter, topics: Topics,
                 cache_size: int | None = None) -> None:
        self.registry = registry
        self.converter = converter
        self.topics = topics
        # Live workflows between messages (engines/live.py); None: the default size, 0: off.
        self.live = LiveWorkflows(live.DEFAULT_SIZE if cache_size is None else cache_size)
        self.arrived = ArrivedPositions(self.live.size)
        self._handlers: dict[type, Callable[[State, str, Any, int], Result]] = {
            StartWorkflow: self._on_start,
            TaskCompleted: lambda s, w, m, now: self._on_task(s, m, now, value=m.result),
            TaskFailed: lambda s, w, m, now: self._on_task(s, m, now, error=m.error),
            ChildCompleted: lambda s, w, m, now: self._on_child(s, m, now, value=m.result),
            ChildFailed: lambda s, w, m, now: self._on_child(s, m, now, error=m.error),
            TimerFired: self._on_timer,
            SendSignal: self._on_signal,
            GetWorkflowResult: self._on_get_result,
            GetWorkflowStatus: self._on_get_status,
            CancelWorkflow: self._on_cancel,
            RetryWorkflow: self._on_retry,
            QueryWorkflow: self._on_query,
            UpdateWorkflow: self._on_update,
            RetryTask: self._on_retry_task,
            SignalWithStart: lambda s, w, m, now: self._with_start(s, w, m.start, now, self._on_signal, m.signal),
            UpdateWithStart: lambda s, w, m, now: self._with_start(s, w, m.start, now, self._on_update, m.update),
            CompleteTask: self._on_complete_task,
        }

    @staticmethod
    def key(envelope: WorkflowEngineMessage) -> str:
        return envelope.workflow_id

    def handle(self, state: State, envelope: WorkflowEngineMessage, now_ms: int) -> Result:
        handler = self._handlers[type(envelope.message)]
        return handler(state, envelope.workflow_id, envelope.message, now_ms)

    # -- handlers -------------------------------------------------------------------------

    def _on_start(self, state: State, workflow_id: str, msg: StartWorkflow, now: int) -> Result:
        if state is not None:
            return self._attach(state, msg, now)
        state = WorkflowState(
            workflow_id=workflow_id, workflow_name=msg.workflow_name, input=msg.input, status=status.RUNNING,
            started_at_ms=now, parent=msg.parent, waiters=(msg.reply,) if msg.reply else (),
            timeout_ms=msg.timeout_ms, tags=msg.tags, trace=msg.trace,
        )
        outgoing = self._tagging(state, AddTag, now)
        if msg.timeout_ms is not None:
            outgoing.append(out.to_workflow(self.topics, workflow_id, TimerFired(-1, purposes.WORKFLOW_TIMEOUT),
                                            now, deliver_at_ms=now + msg.timeout_ms))
        return self._run(state, now, outgoing)

    def _with_start(self, state: State, workflow_id: str, start: StartWorkflow, now: int,
                    then: Callable[[State, str, Any, int], Result], message: Any) -> Result:
        """Signal- or update-with-start: the start (a new run, or attach to the run of that id), then
        the signal or update on the state it left, both in this one decision (saved together)."""
        first = self._on_start(state, workflow_id, start, now)
        after = first.state if not first.unchanged else state
        second = then(after, workflow_id, message, now)
        changed = not (first.unchanged and second.unchanged)
        return Decision(second.state if not second.unchanged else after, first.outgoing + second.outgoing,
                        unchanged=not changed, errors=first.errors + second.errors)

    def _attach(self, state: WorkflowState, msg: StartWorkflow, now: int) -> Result:
        updated = False
        if msg.parent is not None and state.parent is not None and msg.parent.generation > state.parent.generation:
            state, updated = evolve(state, parent=msg.parent), True  # the parent was retried: answer its new run
        if state.status != status.RUNNING:
            replies = [msg.reply] if msg.reply else []
            answers = out.closed(self.topics, state, replies, now, notify_parent=bool(msg.parent))
            return Decision(state, answers, unchanged=not updated)
        if msg.reply is None or msg.reply in state.waiters:
            return Decision(state, unchanged=not updated)
        return Decision(evolve(state, waiters=state.waiters + (msg.reply,)))

    def _on_task(self, state: State, msg: TaskCompleted | TaskFailed, now: int,
                 value: bytes | None = None, error: ErrorInfo | None = None) -> Result:
        if state is not None and msg.generation < state.generation:  # from a run before a retry
            return Decision(state, unchanged=True)
        return self._on_outcome(state, msg.position, kinds.TASK, now, value=value, error=error)

    def _on_child(self, state: State, msg: ChildCompleted | ChildFailed, now: int,
                  value: bytes | None = None, error: ErrorInfo | None = None) -> Result:
        if state is not None and msg.generation < state.generation:  # for a run before a retry or a new run
            return Decision(state, unchanged=True)
        return self._on_outcome(state, msg.position, kinds.CHILD, now, value=value, error=error)

    def _on_outcome(self, state: State, position: int, kind: str, now: int,
                    value: bytes | None = None, error: ErrorInfo | None = None) -> Result:
        if state is None or not self._is_open(state, position, kind):
            return Decision(state, unchanged=True)
        arrival = Arrival(position=position, at_ms=now, value=value, error=error)
        return self._run(evolve(state, arrivals=state.arrivals + (arrival,)), now, [])

    def _on_timer(self, state: State, workflow_id: str, msg: TimerFired, now: int) -> Result:
        if state is not None and msg.generation < state.generation:  # armed by a run before a retry
            return Decision(state, unchanged=True)
        if msg.purpose == purposes.UNBLOCK:
            return self._on_unblock(state, now)
        if msg.purpose == purposes.WORKFLOW_TIMEOUT:
            if state is None or state.status != status.RUNNING:
                return Decision(state, unchanged=True)
            error = ErrorInfo("WorkflowTimeoutError", f"workflow {workflow_id!r} did not finish within "
                                                      f"{state.timeout_ms} ms", workflow_id=workflow_id)
            return self._close(state, now, [], error=error)
        kind = _TIMER_KINDS[msg.purpose]
        if state is None or not self._is_open(state, msg.position, kind):
            return Decision(state, unchanged=True)
        timed_out = None if msg.purpose == purposes.SLEEP else _timeout_error(state, msg)
        return self._on_outcome(state, msg.position, kind, now, error=timed_out)

    def _on_signal(self, state: State, workflow_id: str, msg: SendSignal, now: int) -> Result:
        if state is not None and msg.signal_id in state.refused_ids:
            reason = f"signal {msg.name!r} ({msg.signal_id}) was refused before; it is not delivered now"
            return Decision(state, self._not_found(workflow_id, msg.reply, now, reason), unchanged=True)
        ack = [out.to_client(msg.reply, workflow_id, SignalAccepted(msg.signal_id), now)] if msg.reply else []
        if state is not None and msg.signal_id in state.signal_ids:  # a duplicate, even once the run has closed
            return Decision(state, ack, unchanged=True)
        if state is None or state.status != status.RUNNING:
            reason = (f"no running workflow {workflow_id!r} to receive signal {msg.name!r}: check the id, or start "
                      "the workflow first" if state is None
                      else f"workflow {workflow_id!r} has finished ({state.status}), so signal {msg.name!r} was not "
                      "delivered; start a new run of it to send it signals")
            answer = self._not_found(workflow_id, msg.reply, now, reason)
            return Decision(state, answer, unchanged=True) if state is None else \
                Decision(refusing(state, msg.signal_id), answer)
        received = Arrival(-1, now, signal=BufferedSignal(msg.signal_id, msg.name, msg.data))
        state = evolve(state, signal_ids=state.signal_ids + (msg.signal_id,), arrivals=state.arrivals + (received,))
        return self._run(state, now, ack)

    def _on_complete_task(self, state: State, workflow_id: str, msg: CompleteTask, now: int) -> Result:
        """An outcome given from outside with a completion token: taken while its step waits for it."""
        why_not = None
        if state is None:
            why_not = f"no workflow {workflow_id!r}"
        elif msg.generation != state.generation:
            why_not = (f"the token is of run {msg.generation} of workflow {workflow_id!r}, which is now at run "
                       f"{state.generation} (retried or continued as new): that attempt's outcome is not wanted")
        elif state.status != status.RUNNING:
            why_not = f"workflow {workflow_id!r} has finished ({state.status})"
        elif msg.position >= len(state.commands) or state.commands[msg.position].kind != kinds.TASK \
                or state.commands[msg.position].name != msg.task_name:
            why_not = f"step {msg.position} of workflow {workflow_id!r} is not task {msg.task_name!r}"
        elif not self._is_open(state, msg.position, kinds.TASK):
            why_not = f"step {msg.position} ({msg.task_name!r}) of workflow {workflow_id!r} is already done"
        elif msg.error is None and msg.result:
            why_not = self._unreadable_result(msg.task_name, msg.result)
        if why_not is not None:
            return Decision(state, self._control(workflow_id, msg.reply, now, "complete", False,
                                                 f"{why_not}; the outcome was not taken"), unchanged=True)
        assert state is not None
        taken = self._control(workflow_id, msg.reply, now, "complete", True,
                              f"step {msg.position} ({msg.task_name!r}) {'failed' if msg.error else 'completed'}")
        value = None if msg.error is not None else (msg.result or NO_VALUE)
        decision = self._on_outcome(state, msg.position, kinds.TASK, now, value=value, error=msg.error)
        return Decision(decision.state, taken + decision.outgoing, unchanged=decision.unchanged,
                        errors=decision.errors)

    def _unreadable_result(self, task_name: str, result: bytes) -> str | None:
        """Why a result given from outside cannot be the task's (it would block the run once recorded), or None.

        The step stays open then, so a completion in the right shape can still be given.
        """
        try:
            hint = self.registry.task(task_name).return_hint
        except DefinitionError:  # a task this engine does not know: its payload must decode at least
            hint = None
        try:
            decode_one(self.converter, result, hint)
        except Exception as exc:
            return (f"the result given for task {task_name!r} cannot be read as what it returns ({type(exc).__name__}:"
                    f" {exc}); give it in that shape, with the payload codecs of the workflow's processes")
        return None

    def _on_retry_task(self, state: State, workflow_id: str, msg: RetryTask, now: int) -> Result:
        """The next attempt of a task, after its backoff: sent on only while the run still waits for it."""
        task = msg.task
        if state is None or task.generation != state.generation or not self._is_open(state, task.position, kinds.TASK) \
                or state.commands[task.position].name != task.task_name:
            return Decision(state, unchanged=True)
        return Decision(state, [out.to_executor(self.topics, task, now)], unchanged=True)

    def _on_get_result(self, state: State, workflow_id: str, msg: GetWorkflowResult, now: int) -> Result:
        if state is None:
            return Decision(state, self._not_found(workflow_id, msg.reply, now, f"no workflow {workflow_id!r}"),
                            unchanged=True)
        return self._attach(state, StartWorkflow(state.workflow_name, b"", reply=msg.reply), now)

    def _on_get_status(self, state: State, workflow_id: str, msg: GetWorkflowStatus, now: int) -> Result:
        if state is None:
            return Decision(state, self._not_found(workflow_id, msg.reply, now, f"no workflow {workflow_id!r}"),
                            unchanged=True)
        reply = WorkflowStatusReply(state.workflow_name, state.status, len(state.commands), state.blocked)
        return Decision(state, [out.to_client(msg.reply, workflow_id, reply, now)], unchanged=True)

    # -- running the code -----------------------------------------------------------------

    def _run(self, state: WorkflowState, now: int, outgoing: list[Outgoing],
             update_outcomes: dict[str, Arrival] | None = None) -> Result:
        """Replay the code and act on where it got; runs that continue as new follow in a loop.

        ``update_outcomes`` collects what the update handlers met on the way returned.
        """
        for _ in range(MAX_RUNS_PER_MESSAGE):
            step = self._run_once(state, now, outgoing, update_outcomes)
            if isinstance(step, Decision):
                return step
            state, outgoing = step
        error = ErrorInfo("ContinueAsNewLoopError", f"workflow {state.workflow_id!r} continued as new "
                          f"{MAX_RUNS_PER_MESSAGE} times without waiting on anything; await a step (a task, a "
                          "sleep, a signal) in each run", workflow_id=state.workflow_id)
        return self._close(state, now, outgoing, error=error)

    def _run_once(self, state: WorkflowState, now: int, outgoing: list[Outgoing],
                  update_outcomes: dict[str, Arrival] | None) -> Result | tuple[WorkflowState, list[Outgoing]]:
        try:
            definition = self.registry.workflow(state.workflow_name)
        except DefinitionError as exc:
            return self._block(state, now, outgoing, exc, len(state.commands))
        dispatcher = StepDispatcher(self.topics, self.converter, state)
        replay = self.live.take(state)
        if replay is not None and replay.definition is definition:
            replay.resume(state, dispatcher.on_new_step)
        else:
            replay = Replay(state, definition, self.converter, dispatcher.on_new_step)
            replay.run()
        if replay.fatal is not None:
            return self._block(state, now, outgoing, replay.fatal, replay.stopped_at)
        error = replay.error
        if error is not None and not isinstance(error, ContinueAsNew) \
                and not fails_workflow(error, definition.failure_exceptions):
            return self._block(state, now, outgoing, error, replay.stopped_at)
        result = b""
        if replay.finished and error is None:
            try:
                result = self.converter.encode([replay.result])
            except Exception as exc:  # an unserializable result is a bug of the code: fixed code resumes it
                return self._block(state, now, outgoing, exc, replay.stopped_at)
        if update_outcomes is not None:
            update_outcomes.update(replay.update_outcomes)
        issued_from = len(state.commands)
        state = evolve(state, commands=state.commands + tuple(dispatcher.commands),
                        arrivals=state.arrivals + tuple(replay.new_arrivals), blocked=None)
        if not replay.finished:
            self.live.keep(state, replay)
            return Decision(state, outgoing + dispatcher.outgoing)
        outgoing = outgoing + unborn(dispatcher.outgoing, state, issued_from)
        if isinstance(error, ContinueAsNew):
            return self._continue_as_new(state, replay, now, outgoing, issued_from)
        if error is not None:
            return self._close(state, now, outgoing, error=out.workflow_error(error, state), unsent_from=issued_from)
        return self._close(state, now, outgoing, result=result, unsent_from=issued_from)

    def _block(self, state: WorkflowState, now: int, outgoing: list[Outgoing], exc: BaseException,
               position: int) -> Result:
        """Keep the run open and what arrived, with the reason; the first time, arm the backoff timer."""
        reason = error_info(exc, workflow_id=state.workflow_id)
        if state.blocked is not None:
            blocked = evolve(state.blocked, reason=reason, position=position)
            return Decision(evolve(state, blocked=blocked), outgoing, errors=(reason,))
        blocked_state = evolve(state, blocked=Blocked(reason, position, now))
        return Decision(blocked_state, outgoing + [self._unblock_timer(blocked_state, now)], errors=(reason,))

    def _on_unblock(self, state: State, now: int) -> Result:
        if state is None or state.status != status.RUNNING or state.blocked is None:
            return Decision(state, unchanged=True)
        decision = self._run(state, now, [])
        after = decision.state
        if after is None or after.blocked is None:
            return decision
        again = evolve(after, blocked=evolve(after.blocked, attempts=after.blocked.attempts + 1))
        return Decision(again, decision.outgoing + [self._unblock_timer(again, now)], errors=decision.errors)

    def _unblock_timer(self, state: WorkflowState, now: int) -> Outgoing:
        attempts = state.blocked.attempts if state.blocked else 0
        delay = min(UNBLOCK_FIRST_DELAY_MS * 2 ** min(attempts, 20), UNBLOCK_MAX_DELAY_MS)
        timer = TimerFired(-1, purposes.UNBLOCK, state.generation)
        return out.to_workflow(self.topics, state.workflow_id, timer, now, deliver_at_ms=now + delay,
                               about=f":{attempts}")

    def _continue_as_new(self, state: WorkflowState, replay: Replay, now: int, outgoing: list[Outgoing],
                         unsent_from: int) -> Result | tuple[WorkflowState, list[Outgoing]]:
        assert isinstance(replay.error, ContinueAsNew)
        try:
            payload = self.converter.encode(replay.error.args_for_next_run)
        except Exception as exc:  # arguments the converter refuses: a bug of the code
            return self._block(state, now, outgoing, exc, replay.stopped_at)
        fresh = WorkflowState(
            workflow_id=state.workflow_id, workflow_name=state.workflow_name, input=payload, status=status.RUNNING,
            started_at_ms=now, parent=state.parent, waiters=state.waiters, timeout_ms=state.timeout_ms,
            generation=state.generation + 1, runs=state.runs + 1, buffered_signals=tuple(replay.buffered),
            signal_ids=state.signal_ids[-MAX_RETRY_IDS:], retry_ids=state.retry_ids, tags=state.tags,
            update_ids=state.update_ids, cancel_ids=state.cancel_ids, refused_ids=state.refused_ids,
            trace=state.trace,
        )
        outgoing = outgoing + release(state, "it continued as new", self.topics, now, unsent_from)
        if state.timeout_ms is not None:  # the timeout applies to each run
            timer = TimerFired(-1, purposes.WORKFLOW_TIMEOUT, fresh.generation)
            outgoing = outgoing + [out.to_workflow(self.topics, state.workflow_id, timer, now,
                                                   deliver_at_ms=now + state.timeout_ms)]
        return fresh, outgoing

    def _close(self, state: WorkflowState, now: int, outgoing: list[Outgoing], result: bytes | None = None,
               error: ErrorInfo | None = None, unsent_from: int | None = None) -> Result:
        if error is None:
            ending = status.COMPLETED
        elif error.type == CANCELLED and state.cancel_requested:
            ending = status.CANCELLED
        else:
            ending = status.FAILED
        closed = evolve(state, status=ending, closed_at_ms=now,
                         result=result, error=error, waiters=(), blocked=None)
        answers = out.closed(self.topics, closed, list(state.waiters), now, notify_parent=True)
        answers += release(state, f"it ended {ending}", self.topics, now, unsent_from)
        # A failed workflow stays under its tags (retry_tag can resume it); a custom id is freed.
        kept = closed.status == status.FAILED
        return Decision(closed, outgoing + answers + self._tagging(closed, RemoveTag, now, keep_plain_tags=kept))

    def _tagging(self, state: WorkflowState, message: type, now: int, keep_plain_tags: bool = False,
                 custom_ids: bool = True) -> list[Outgoing]:
        """Tell the tag engine that this workflow runs (AddTag) or ended (RemoveTag) under each of its tags."""
        def concerned(tag: str) -> bool:
            custom = tag.startswith(tags_messages.CUSTOM_ID_PREFIX)
            return custom_ids if custom else not keep_plain_tags

        return [out.to_tag(self.topics, tags_messages.tag_key(tag, state.workflow_id), message(state.workflow_id), now,
                           about=f"{state.workflow_id}:{state.generation}")
                for tag in state.tags if concerned(tag)]

    def _is_open(self, state: WorkflowState, position: int, kind: str) -> bool:
        return (state.status == status.RUNNING and 0 <= position < len(state.commands)
                and state.commands[position].kind == kind and position not in self.arrived.of(state))

    def _not_found(self, workflow_id: str, reply: ReplyTo | None, now: int, reason: str) -> list[Outgoing]:
        return [out.to_client(reply, workflow_id, WorkflowNotFound(reason), now)] if reply else []


def _timeout_error(state: WorkflowState, msg: TimerFired) -> ErrorInfo:
    name = state.commands[msg.position].name
    if msg.purpose == purposes.SIGNAL_TIMEOUT:
        return ErrorInfo("SignalTimeoutError", f"no signal {name!r} arrived before the timeout",
                         workflow_id=state.workflow_id)
    return ErrorInfo("TaskTimeoutError", f"task {name!r} did not finish within its overall timeout",
                     task_name=name, workflow_id=state.workflow_id)
