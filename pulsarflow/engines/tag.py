"""The tag engine, keyed by tag bucket: which running workflows carry a tag, and work on all of them.

A tag's workflow ids are spread over ``TAG_BUCKETS`` keys by a hash of the id, so each
stored value stays small however many workflows carry the tag. An operation on a tag
(signal, cancel, retry) is sent to every bucket; each bucket handles a page of
``PAGE_SIZE`` ids per message and sends itself the next page, so a tag with 100,000
workflows never makes one long handler call nor one huge message. Every command it sends
has an id derived from the operation id, so a redelivered page changes nothing.

A custom id is a tag of its own (``customId:<id>``, one key) holding at most one running
workflow: a start by custom id starts one if none runs, and otherwise attaches to it.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from pulsarflow.converter import NO_VALUE
from pulsarflow.engines import messages_out as out
from pulsarflow.engines.outgoing import Decision, Outgoing
from pulsarflow.messages import (
    AddTag,
    CancelWorkflow,
    CustomIdAnswer,
    GetWorkflowResult,
    ListTagIds,
    RemoveTag,
    RetryWorkflow,
    SendSignal,
    StartByCustomId,
    TagEngineMessage,
    TagIds,
    TagOperation,
    TagState,
)
from pulsarflow.messages import tags as actions
from pulsarflow.messages.tags import TAG_STATE_SCHEMA_VERSION
from pulsarflow.topics import Topics

PAGE_SIZE = 200
REMEMBERED_ENDS = 64  # ids that left a tag, kept so that a late AddTag or start cannot bring them back
State = TagState | None
Result = Decision[TagState]


class TagEngine:
    """Pure: ``handle(state, envelope, now_ms)`` returns the new state and the messages to send."""

    input_type = TagEngineMessage
    state_type = TagState
    state_version = TAG_STATE_SCHEMA_VERSION

    def __init__(self, topics: Topics) -> None:
        self.topics = topics
        self._handlers: dict[type, Callable[[State, str, Any, int], Result]] = {
            AddTag: self._on_add,
            RemoveTag: self._on_remove,
            ListTagIds: self._on_list,
            TagOperation: self._on_operation,
            StartByCustomId: self._on_start,
        }

    @staticmethod
    def key(envelope: TagEngineMessage) -> str:
        return envelope.tag_key

    def handle(self, state: State, envelope: TagEngineMessage, now_ms: int) -> Result:
        return self._handlers[type(envelope.message)](state, envelope.tag_key, envelope.message, now_ms)

    def _on_add(self, state: State, key: str, msg: AddTag, now: int) -> Result:
        ids = state.workflow_ids if state else ()
        if msg.workflow_id in ids or (state is not None and msg.workflow_id in state.ended):
            return Decision(state, unchanged=True)  # known, or already gone (a late or repeated AddTag)
        insort = list(ids)
        bisect.insort(insort, msg.workflow_id)
        return Decision(replace(state, workflow_ids=tuple(insort)) if state else TagState(key, tuple(insort)))

    def _on_remove(self, state: State, key: str, msg: RemoveTag, now: int) -> Result:
        ended = ((state.ended if state else ()) + (msg.workflow_id,))[-REMEMBERED_ENDS:]
        if state is not None and msg.workflow_id in state.ended:
            return Decision(state, unchanged=True)
        ids = tuple(i for i in (state.workflow_ids if state else ()) if i != msg.workflow_id)
        return Decision(TagState(key, ids, ended=ended))

    def _on_list(self, state: State, key: str, msg: ListTagIds, now: int) -> Result:
        ids = state.workflow_ids if state else ()
        first = _first(ids, msg.after)
        page = ids[first:first + max(1, msg.limit)]
        answer = TagIds(page, page[-1] if page and first + len(page) < len(ids) else None)
        return Decision(state, [out.to_client(msg.reply, key, answer, now)], unchanged=True)

    def _on_operation(self, state: State, key: str, msg: TagOperation, now: int) -> Result:
        ids = state.workflow_ids if state else ()
        first = _first(ids, msg.after)
        page = ids[first:first + PAGE_SIZE]
        outgoing = [self._command(msg, workflow_id, now) for workflow_id in page]
        if first + PAGE_SIZE < len(ids):  # the rest in a later message: no call handles more than a page
            # The cursor is the last id handled, not an index: ids that leave meanwhile shift no one.
            outgoing.append(out.to_tag(self.topics, key, replace(msg, after=page[-1]), now,
                                       about=f"{msg.operation_id}:{page[-1]}"))
        return Decision(state, outgoing, unchanged=True)

    def _command(self, msg: TagOperation, workflow_id: str, now: int) -> Outgoing:
        command: Any
        if msg.action == actions.SIGNAL:
            command = SendSignal(f"{msg.operation_id}:{workflow_id}", msg.signal_name or "", msg.data or NO_VALUE)
        elif msg.action == actions.CANCEL:
            command = CancelWorkflow(msg.reason or f"cancelled by tag operation {msg.operation_id}")
        else:
            command = RetryWorkflow(f"{msg.operation_id}:{workflow_id}")
        return out.to_workflow(self.topics, workflow_id, command, now, about=f":{msg.operation_id}")

    def _on_start(self, state: State, key: str, msg: StartByCustomId, now: int) -> Result:
        if state is not None and msg.workflow_id in state.ended:  # a repeated start of a run that has ended
            answer = out.to_client(msg.reply, msg.workflow_id, CustomIdAnswer(msg.workflow_id, started=False), now)
            return Decision(state, [answer], unchanged=True)
        running = state.workflow_ids[0] if state and state.workflow_ids else None
        if running is not None and running != msg.workflow_id:  # attach: its result goes to this start's reply
            attach = GetWorkflowResult(msg.start.reply) if msg.start.reply else None
            outgoing = [out.to_workflow(self.topics, running, attach, now, about=f":{msg.reply.request_id}")
                        ] if attach else []
            answer = out.to_client(msg.reply, running, CustomIdAnswer(running, started=False), now)
            return Decision(state, outgoing + [answer], unchanged=True)
        start = replace(msg.start, tags=tuple(dict.fromkeys(msg.start.tags + (key,))))
        outgoing = [out.to_workflow(self.topics, msg.workflow_id, start, now),
                    out.to_client(msg.reply, msg.workflow_id, CustomIdAnswer(msg.workflow_id, started=True), now)]
        new_state = replace(state, workflow_ids=(msg.workflow_id,)) if state else TagState(key, (msg.workflow_id,))
        return Decision(new_state, outgoing, unchanged=running is not None)


def _first(ids: tuple[str, ...], after: str | None) -> int:
    """Index of a page's first id: the first one sorting after the cursor (the first of all without one)."""
    return bisect.bisect_right(ids, after) if after is not None else 0
