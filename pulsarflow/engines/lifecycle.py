"""Cancel and retry: the lifecycle controls of the workflow engine (pure, like the rest).

Cancel records, for every step still pending, an outcome that raises
``WorkflowCancelledError`` in the workflow code; the code may catch it and run cleanup
(its new steps run normally) or let it end the workflow as CANCELLED. Pending tasks get
a cancellation notice (the executor running one tells it, and its result is ignored
since the step already has its outcome) and pending children are cancelled in turn.

Retry reopens a failed workflow at its first failed task outcome being retried: that
outcome and every later one are dropped, the run number (``generation``) goes up so that
late outcomes of the previous run are ignored, and every step left open is dispatched
again. The workflow then continues as if the task had not failed yet. Retry of a blocked
run (or of a run that an older release failed for a mismatch with its history) replays
it with the code deployed now, keeping its whole history.

Release is what closing a run does to the steps it leaves open: running tasks are told
to stop, children are cancelled unless they were started with ``abandon=True``.
"""

from __future__ import annotations

from pulsarflow.converter import NO_VALUE, PayloadConverter
from pulsarflow.engines import messages_out as out
from pulsarflow.engines.outgoing import Outgoing
from pulsarflow.engines.steps import StepDispatcher
from pulsarflow.errors import ControlRefusedError, ErrorInfo
from pulsarflow.failures import CANCELLED, is_own_cancellation, is_retryable_ending, was_blocking_ending
from pulsarflow.interpreter.definitions import WorkflowDefinition
from pulsarflow.interpreter.replay import Replay
from pulsarflow.messages import (
    Arrival,
    BufferedSignal,
    ExecuteTask,
    StartWorkflow,
    TimerFired,
    WorkflowState,
)
from pulsarflow.messages import client as status
from pulsarflow.messages import state as kinds
from pulsarflow.messages import workflow as purposes
from pulsarflow.messages.evolve import evolve
from pulsarflow.topics import Topics


def arrived_positions(state: WorkflowState) -> set[int]:
    """Positions of the steps that have their outcome."""
    return {a.position for a in state.arrivals}


def open_positions(state: WorkflowState) -> list[int]:
    """Positions of the steps still waiting for an outcome (markers wait for none)."""
    arrived = arrived_positions(state)
    return [c.position for c in state.commands if c.position not in arrived and c.kind not in kinds.MARKERS]


def release(state: WorkflowState, why: str, topics: Topics, now: int, unsent_from: int | None = None) -> list[Outgoing]:
    """Notices for what a closing run leaves open: its tasks stop, its children are cancelled (unless abandoned).

    Steps from ``unsent_from`` on were issued by the decision that closes the run and their
    messages are not sent (see :func:`unborn`): they need no notice.
    """
    reason = f"workflow {state.workflow_id!r} closed: {why}"
    notices = [out.stop_step(topics, state, position, reason, now) for position in open_positions(state)
               if (unsent_from is None or position < unsent_from) and not state.commands[position].abandon]
    return [n for n in notices if n is not None]


def cancel(state: WorkflowState, reason: str, topics: Topics, now: int) -> tuple[WorkflowState, list[Outgoing]]:
    """The state with every pending step cancelled, and the notices for its tasks and children."""
    error = ErrorInfo(CANCELLED, f"workflow {state.workflow_id!r} was cancelled: {reason}",
                      workflow_id=state.workflow_id)
    pending = open_positions(state)
    arrivals = tuple(Arrival(position, now, error=error) for position in pending)
    # abandoned children too: a cancel is passed on, closing is not
    notices = [out.stop_step(topics, state, position, error.message, now) for position in pending]
    cancelled = evolve(state, cancel_requested=True, arrivals=state.arrivals + arrivals)
    return cancelled, [n for n in notices if n is not None]


def unborn(outgoing: list[Outgoing], state: WorkflowState, issued_from: int) -> list[Outgoing]:
    """The messages of steps issued by a decision that also closes the run, less those that would run after it.

    Tasks, timers and children (not abandoned ones) of such steps are never sent, rather
    than sent and cancelled at once, which a reordering could turn into a start after the cancel.
    """
    wid = state.workflow_id

    def dies(o: Outgoing) -> bool:
        inner = getattr(o.message, "message", None)
        if isinstance(inner, StartWorkflow) and inner.parent is not None and inner.parent.workflow_id == wid:
            return inner.parent.position >= issued_from and not state.commands[inner.parent.position].abandon
        if isinstance(inner, ExecuteTask):
            return inner.workflow_id == wid and inner.position >= issued_from
        return isinstance(inner, TimerFired) and o.key == wid and inner.position >= issued_from

    return [o for o in outgoing if not dies(o)]


def replay_again(state: WorkflowState) -> WorkflowState:
    """A blocked run, or one failed by an older release for a mismatch with its code, ready to replay as it is."""
    wid = state.workflow_id
    if state.status == status.RUNNING and state.blocked is not None:
        return state
    if state.status == status.FAILED and was_blocking_ending(state.error):
        return evolve(state, status=status.RUNNING, closed_at_ms=None, result=None, error=None)
    raise ControlRefusedError(f"workflow {wid!r} is {state.status} and not blocked; retry resumes a FAILED workflow "
                              "or replays a blocked one")


def reopen(state: WorkflowState, positions: tuple[int, ...], definition: WorkflowDefinition,
           converter: PayloadConverter, topics: Topics, now: int) -> tuple[WorkflowState, list[Outgoing]]:
    """A failed workflow reopened before its first retried failure, with its open steps re-sent.

    Outcomes after the cut are dropped, except what clients sent: updates are applied again
    and signals are delivered again (to the same wait if the code still reaches it, else to
    the next wait of that name).
    """
    wid = state.workflow_id
    if state.status != status.FAILED:
        raise ControlRefusedError(f"workflow {wid!r} is {state.status}; only a FAILED workflow can be retried")
    if state.error is None or not is_retryable_ending(state.error):
        ending = state.error.describe() if state.error else "no error"
        raise ControlRefusedError(f"workflow {wid!r} failed with {ending}"
                                  ", raised by its own code; retry resumes a workflow that a failed task or child "
                                  "ended (fix the code and start it again)")
    failed = [i for i, a in enumerate(state.arrivals)
              if not a.from_client and a.error is not None and not is_own_cancellation(a.error, wid)
              and state.commands[a.position].kind in (kinds.TASK, kinds.CHILD)
              and (not positions or a.position in positions)]
    if not failed:
        which = f"at positions {list(positions)}" if positions else "at all"
        raise ControlRefusedError(f"workflow {wid!r} has no failed task or child {which} to retry "
                                  f"(it failed with {state.error.describe() if state.error else 'no error'})")
    kept, dropped = state.arrivals[:failed[0]], state.arrivals[failed[0]:]
    reopened = evolve(state, status=status.RUNNING, arrivals=kept, closed_at_ms=None,
                       result=None, error=None, generation=state.generation + 1)
    dispatcher = StepDispatcher(topics, converter, reopened)
    replay = Replay(reopened, definition, converter, dispatcher.on_new_step, partial_history=True)
    replay.run()
    if replay.fatal is not None:
        raise ControlRefusedError(f"workflow {wid!r} cannot be retried: {replay.fatal}")
    reached = min(len(replay.steps), len(state.commands))
    reopened = evolve(reopened, commands=state.commands[:reached], arrivals=kept + _client_arrivals(state, dropped))
    resend = StepDispatcher(topics, converter, reopened)
    for position in open_positions(reopened):
        resend.redispatch(position, replay.steps[position][1], replay.issued_at[position], now)
    if state.timeout_ms is not None:
        timer = TimerFired(-1, purposes.WORKFLOW_TIMEOUT, reopened.generation)
        resend.outgoing.append(out.to_workflow(topics, wid, timer, now, deliver_at_ms=now + state.timeout_ms))
    return reopened, resend.outgoing


def _client_arrivals(state: WorkflowState, dropped: tuple[Arrival, ...]) -> tuple[Arrival, ...]:
    """From the dropped outcomes, what clients sent (updates and signals), in order, to apply again.

    A signal recorded by an older release as the outcome of its wait is turned into a
    received signal, which the code takes wherever it waits for it now.
    """
    resent: list[Arrival] = []
    for arrival in dropped:
        if arrival.from_client:
            resent.append(arrival)
            continue
        command = state.commands[arrival.position]
        if command.kind == kinds.SIGNAL and arrival.error is None:
            signal = BufferedSignal(f"{state.workflow_id}:retried:{arrival.position}", command.name,
                                    arrival.value or NO_VALUE)
            resent.append(Arrival(-1, arrival.at_ms, signal=signal))
    return tuple(resent)
