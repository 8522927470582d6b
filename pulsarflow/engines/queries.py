"""Queries and updates: replay a workflow to where it is and call the handler it declared.

A query records nothing. An update is recorded in the history (an arrival carrying the
call), so that every later replay applies it again at the same point; an update the
workflow has no handler for is answered with the reason and not recorded.
"""

from __future__ import annotations

from pulsarflow.converter import PayloadConverter
from pulsarflow.engines.steps import StepDispatcher
from pulsarflow.errors import DefinitionError, ErrorInfo, UpdateRejectedError
from pulsarflow.failures import error_info
from pulsarflow.interpreter import sandbox
from pulsarflow.interpreter.registry import Registry
from pulsarflow.interpreter.replay import Replay
from pulsarflow.messages import Arrival, QueryAnswer, WorkflowState
from pulsarflow.topics import Topics

REJECTED = UpdateRejectedError.__name__


def replayed(state: WorkflowState, registry: Registry, converter: PayloadConverter,
             topics: Topics) -> Replay | ErrorInfo:
    """The workflow replayed to its current point (nothing is sent or saved), or why it cannot be."""
    try:
        definition = registry.workflow(state.workflow_name)
    except DefinitionError as exc:
        return ErrorInfo("DefinitionError", str(exc), workflow_id=state.workflow_id)
    replay = Replay(state, definition, converter, StepDispatcher(topics, converter, state).on_new_step)
    replay.run()
    return replay


def answer(state: WorkflowState, registry: Registry, converter: PayloadConverter, topics: Topics,
           name: str, args: bytes) -> QueryAnswer:
    """The query's value, or an error saying why there is none; the state is left as it is."""
    wid = state.workflow_id
    replay = replayed(state, registry, converter, topics)
    if isinstance(replay, ErrorInfo):
        return QueryAnswer(error=replay)
    handler = replay.queries.get(name)
    if handler is None:
        known = sorted(replay.queries) or "none"
        return QueryAnswer(error=ErrorInfo("QueryNotFoundError", f"workflow {wid!r} ({state.workflow_name}) "
                                           f"declares no query {name!r} at this point; declared: {known}",
                                           workflow_id=wid))
    try:
        values = converter.decode(args, None)
        with sandbox.workflow_code(wid, lambda violation: None):  # the guard raises it right here
            value = handler(*values)
        return QueryAnswer(value=converter.encode([value]))
    except Exception as exc:  # the handler's own error, or an unserializable value: told to the client
        return QueryAnswer(error=error_info(exc, workflow_id=wid))


def update_outcome(state: WorkflowState, update_id: str, registry: Registry, converter: PayloadConverter,
                   topics: Topics) -> Arrival:
    """What the update recorded in ``state`` returns (its value, or the error to answer with)."""
    replay = replayed(state, registry, converter, topics)
    if isinstance(replay, ErrorInfo):
        return Arrival(-1, 0, error=replay)
    if replay.fatal is not None:
        return Arrival(-1, 0, error=error_info(replay.fatal, workflow_id=state.workflow_id))
    outcome = replay.update_outcomes.get(update_id)
    if outcome is None:
        error = UpdateRejectedError(f"workflow {state.workflow_id!r} finished before the update could apply")
        return Arrival(-1, 0, error=error_info(error, workflow_id=state.workflow_id))
    return outcome
