"""Queries: replay a workflow to where it is and call the handler it declared (nothing is recorded)."""

from __future__ import annotations

from pulsarflow.converter import PayloadConverter
from pulsarflow.engines.errors import error_info
from pulsarflow.engines.replay import Replay
from pulsarflow.engines.steps import StepDispatcher
from pulsarflow.errors import DefinitionError, ErrorInfo
from pulsarflow.messages import QueryAnswer, WorkflowState
from pulsarflow.sdk import sandbox
from pulsarflow.sdk.registry import Registry
from pulsarflow.topics import Topics


def answer(state: WorkflowState, registry: Registry, converter: PayloadConverter, topics: Topics,
           name: str, args: bytes) -> QueryAnswer:
    """The query's value, or an error saying why there is none; the state is left as it is."""
    wid = state.workflow_id
    try:
        definition = registry.workflow(state.workflow_name)
    except DefinitionError as exc:
        return QueryAnswer(error=ErrorInfo("DefinitionError", str(exc), workflow_id=wid))
    replay = Replay(state, definition, converter, StepDispatcher(topics, converter, state).on_new_step)
    replay.run()
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
