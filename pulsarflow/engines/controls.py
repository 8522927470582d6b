"""The workflow engine's handlers of client controls: cancel, retry, query and update.

Split from ``engines/workflow.py`` (the engine inherits them); the pure state changes are
in ``engines/lifecycle.py`` (cancel, retry) and ``engines/queries.py`` (query, update).
"""

from __future__ import annotations

from pulsarflow.converter import PayloadConverter
from pulsarflow.engines import lifecycle, queries
from pulsarflow.engines import messages_out as out
from pulsarflow.engines.outgoing import Decision, Outgoing
from pulsarflow.errors import ControlRefusedError, DefinitionError, ErrorInfo
from pulsarflow.failures import was_blocking_ending
from pulsarflow.interpreter.registry import Registry
from pulsarflow.messages import (
    AddTag,
    Arrival,
    CancelWorkflow,
    ControlAnswer,
    QueryAnswer,
    QueryWorkflow,
    ReplyTo,
    RetryWorkflow,
    UpdateWorkflow,
    WorkflowState,
)
from pulsarflow.messages import client as status
from pulsarflow.messages.evolve import evolve
from pulsarflow.messages.state import refusing
from pulsarflow.topics import Topics

State = WorkflowState | None
Result = Decision[WorkflowState]

MAX_RETRY_IDS = 32  # ids of applied retry and cancel requests kept, against redelivered duplicates
MAX_UPDATE_IDS = 256  # ids of applied updates kept across runs, against redelivered duplicates


class ControlHandlers:
    """Mixed into :class:`~pulsarflow.engines.workflow.WorkflowEngine`, which provides what is declared here."""

    registry: Registry
    converter: PayloadConverter
    topics: Topics

    def _run(self, state: WorkflowState, now: int, outgoing: list[Outgoing],
             update_outcomes: dict[str, Arrival] | None = None) -> Result:
        raise NotImplementedError

    def _tagging(self, state: WorkflowState, message: type, now: int, keep_plain_tags: bool = False,
                 custom_ids: bool = True) -> list[Outgoing]:
        raise NotImplementedError

    def _not_found(self, workflow_id: str, reply: ReplyTo | None, now: int, reason: str) -> list[Outgoing]:
        raise NotImplementedError

    def _on_cancel(self, state: State, workflow_id: str, msg: CancelWorkflow, now: int) -> Result:
        request_id = msg.reply.request_id if msg.reply else None
        if state is not None and request_id in state.refused_ids:
            return self._refused_again(state, workflow_id, msg.reply, now, "cancel")
        if state is None or state.status != status.RUNNING:
            detail = f"no workflow {workflow_id!r}" if state is None else f"workflow {workflow_id!r} is {state.status}"
            answer = self._control(workflow_id, msg.reply, now, "cancel", False,
                                   f"{detail}; only a running workflow can be cancelled")
            return self._refuse(state, request_id, answer)
        if state.cancel_requested or request_id in state.cancel_ids:  # the same request in a later run too
            return Decision(state, self._control(workflow_id, msg.reply, now, "cancel", True,
                                                 "cancellation already requested"), unchanged=True)
        cancelled, notices = lifecycle.cancel(state, msg.reason, self.topics, now)
        if request_id is not None:
            cancelled = evolve(cancelled, cancel_ids=(state.cancel_ids + (request_id,))[-MAX_RETRY_IDS:])
        ack = self._control(workflow_id, msg.reply, now, "cancel", True, "cancellation requested")
        return self._run(cancelled, now, ack + notices)

    def _on_retry(self, state: State, workflow_id: str, msg: RetryWorkflow, now: int) -> Result:
        if state is None:
            return Decision(state, self._control(workflow_id, msg.reply, now, "retry", False,
                                                 f"no workflow {workflow_id!r}"), unchanged=True)
        if msg.retry_id in state.retry_ids:
            return Decision(state, self._control(workflow_id, msg.reply, now, "retry", True, "already retried"),
                            unchanged=True)
        if msg.retry_id in state.refused_ids:
            return self._refused_again(state, workflow_id, msg.reply, now, "retry")
        if state.blocked is not None or was_blocking_ending(state.error):
            return self._replay_again(state, workflow_id, msg, now)
        try:
            definition = self.registry.workflow(state.workflow_name)
            reopened, resent = lifecycle.reopen(state, msg.positions, definition, self.converter, self.topics, now)
        except (ControlRefusedError, DefinitionError) as exc:
            return self._refuse(state, msg.retry_id, self._control(workflow_id, msg.reply, now, "retry", False,
                                                                   str(exc)))
        reopened = evolve(reopened, retry_ids=(state.retry_ids + (msg.retry_id,))[-MAX_RETRY_IDS:])
        ack = self._control(workflow_id, msg.reply, now, "retry", True,
                            f"run {reopened.generation} resumes at step {len(reopened.commands) - 1}")
        # Back under its tags; not under a custom id, which another start may hold by now.
        return self._run(reopened, now, ack + resent + self._tagging(reopened, AddTag, now, keep_plain_tags=False,
                                                                     custom_ids=False))

    def _replay_again(self, state: WorkflowState, workflow_id: str, msg: RetryWorkflow, now: int) -> Result:
        """Retry of a blocked run: replay it with the code deployed now, keeping its whole history."""
        try:
            again = lifecycle.replay_again(state)
        except ControlRefusedError as exc:
            return self._refuse(state, msg.retry_id, self._control(workflow_id, msg.reply, now, "retry", False,
                                                                   str(exc)))
        again = evolve(again, retry_ids=(state.retry_ids + (msg.retry_id,))[-MAX_RETRY_IDS:])
        decision = self._run(again, now, [])
        after = decision.state
        blocked = after.blocked if after is not None else None
        detail = (f"still blocked at step {blocked.position}: {blocked.reason.describe()}" if blocked is not None
                  else "replayed with the code deployed now")
        ack = self._control(workflow_id, msg.reply, now, "retry", blocked is None, detail)
        return Decision(after, ack + decision.outgoing, errors=decision.errors)

    def _on_query(self, state: State, workflow_id: str, msg: QueryWorkflow, now: int) -> Result:
        if state is None:
            return Decision(state, self._not_found(workflow_id, msg.reply, now, f"no workflow {workflow_id!r}"),
                            unchanged=True)
        answer = queries.answer(state, self.registry, self.converter, self.topics, msg.name, msg.args)
        return Decision(state, [out.to_client(msg.reply, workflow_id, answer, now)], unchanged=True)

    def _on_update(self, state: State, workflow_id: str, msg: UpdateWorkflow, now: int) -> Result:
        call_id = msg.call.update_id
        if state is not None and call_id in state.refused_ids:
            refused = ErrorInfo(queries.REJECTED, f"update {call_id!r} was refused before; it is not applied now "
                                "(send a new update)", workflow_id=workflow_id)
            return Decision(state, [out.to_client(msg.reply, workflow_id, QueryAnswer(error=refused), now)],
                            unchanged=True)
        recorded = state is not None and any(a.update is not None and a.update.update_id == call_id
                                             for a in state.arrivals)
        if recorded:  # a duplicate, even once the run has closed: answer again from the history, change nothing
            assert state is not None
            outcome = queries.update_outcome(state, call_id, self.registry, self.converter, self.topics)
            return Decision(state, [self._answer(msg, workflow_id, outcome, now)], unchanged=True)
        if state is None or state.status != status.RUNNING:
            why = f"no workflow {workflow_id!r}" if state is None else f"workflow {workflow_id!r} is {state.status}"
            refused = ErrorInfo(queries.REJECTED, f"{why}; only a running workflow takes updates",
                                workflow_id=workflow_id)
            return self._refuse(state, call_id, [out.to_client(msg.reply, workflow_id, QueryAnswer(error=refused),
                                                               now)])
        if state.blocked is not None:  # recorded now, it would be applied later although the client was told no
            blocked = state.blocked
            refused = ErrorInfo(queries.REJECTED, f"workflow {workflow_id!r} is blocked at step {blocked.position} "
                                f"({blocked.reason.describe()}); the update was not applied: send it again once "
                                "the run resumes", workflow_id=workflow_id)
            return self._refuse(state, call_id, [out.to_client(msg.reply, workflow_id, QueryAnswer(error=refused),
                                                               now)])
        if call_id in state.update_ids:  # applied in an earlier run: its answer is gone
            refused = ErrorInfo(queries.REJECTED, f"update {call_id!r} was already applied, in an earlier run of "
                                f"workflow {workflow_id!r}", workflow_id=workflow_id)
            return Decision(state, [out.to_client(msg.reply, workflow_id, QueryAnswer(error=refused), now)],
                            unchanged=True)
        candidate = evolve(state, arrivals=state.arrivals + (Arrival(-1, now, update=msg.call),),
                            update_ids=(state.update_ids + (call_id,))[-MAX_UPDATE_IDS:])
        outcomes: dict[str, Arrival] = {}
        decision = self._run(candidate, now, [], outcomes)  # one replay: it applies the update and runs on
        outcome = outcomes.get(call_id) or queries.update_outcome(candidate, call_id, self.registry, self.converter,
                                                                  self.topics)
        answer = self._answer(msg, workflow_id, outcome, now)
        if outcome.error is not None and outcome.error.type == queries.REJECTED:
            return self._refuse(state, call_id, [answer])  # no handler for it: only the refusal is recorded
        return Decision(decision.state, [answer, *decision.outgoing], unchanged=decision.unchanged,
                        errors=decision.errors)

    def _refuse(self, state: State, request_id: str | None, answer: list[Outgoing]) -> Result:
        """Refuse a request, and remember it so that a redelivered copy, later, is refused too."""
        if state is None or request_id is None:
            return Decision(state, answer, unchanged=True)
        return Decision(refusing(state, request_id), answer)

    def _refused_again(self, state: WorkflowState, workflow_id: str, reply: ReplyTo | None, now: int,
                       action: str) -> Result:
        detail = f"this {action} request was refused before; it is not applied now (send a new one)"
        return Decision(state, self._control(workflow_id, reply, now, action, False, detail), unchanged=True)

    def _answer(self, msg: UpdateWorkflow, workflow_id: str, outcome: Arrival, now: int) -> Outgoing:
        return out.to_client(msg.reply, workflow_id, QueryAnswer(outcome.value, outcome.error), now)

    def _control(self, workflow_id: str, reply: ReplyTo | None, now: int, action: str, accepted: bool,
                 detail: str) -> list[Outgoing]:
        return [out.to_client(reply, workflow_id, ControlAnswer(action, accepted, detail), now)] if reply else []
