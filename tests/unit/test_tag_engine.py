"""The tag engine on its own: membership under repeated and out-of-order adds and removes,
operations and listings paged over large tags, and starts by custom id."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pulsarflow.engines.tag import PAGE_SIZE, TagEngine
from pulsarflow.messages import (
    AddTag,
    CustomIdAnswer,
    GetWorkflowResult,
    ListTagIds,
    RemoveTag,
    ReplyTo,
    SendSignal,
    StartByCustomId,
    StartWorkflow,
    TagEngineMessage,
    TagIds,
    TagOperation,
    TagState,
)
from pulsarflow.messages.tags import CUSTOM_ID_PREFIX
from pulsarflow.topics import Topics

ENGINE = TagEngine(Topics(app="tags"))
REPLY = ReplyTo("non-persistent://public/default/tags-client-c", "r1", identity=True)


def handle(state: TagState | None, key: str, message: Any) -> tuple[TagState | None, list[Any]]:
    decision = ENGINE.handle(state, TagEngineMessage("m", key, 0, message), 0)
    new = state if decision.unchanged else decision.state
    return new, [o.message.message for o in decision.outgoing]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["add", "remove"]), st.integers(0, 15)), max_size=60))
def test_membership_is_every_id_added_and_not_yet_removed(ops: list[tuple[str, int]]) -> None:
    state: TagState | None = None
    present: set[str] = set()
    gone: set[str] = set()
    for op, n in ops:
        wid = f"wf-{n:02d}"
        state, sent = handle(state, "color#00", AddTag(wid) if op == "add" else RemoveTag(wid))
        assert sent == []
        if op == "remove":
            present.discard(wid)
            gone.add(wid)
        elif wid not in gone:  # a late or repeated AddTag of an ended run brings nothing back
            present.add(wid)
    ids = state.workflow_ids if state else ()
    assert list(ids) == sorted(present)


def test_an_operation_reaches_each_id_once_in_pages_even_when_ids_leave_meanwhile() -> None:
    state: TagState | None = None
    for n in range(2 * PAGE_SIZE + 50):
        state, _ = handle(state, "big#00", AddTag(f"wf-{n:04d}"))
    operation: TagOperation | None = TagOperation("op1", "signal", signal_name="go", data=b"[1]")
    reached: list[str] = []
    pages = 0
    while operation is not None:
        _, sent = handle(state, "big#00", operation)
        pages += 1
        reached += [s.signal_id.split(":", 1)[1] for s in sent if isinstance(s, SendSignal)]
        follow = [s for s in sent if isinstance(s, TagOperation)]
        assert len(follow) <= 1 and len(sent) - len(follow) <= PAGE_SIZE
        operation = follow[0] if follow else None
        if pages == 1:  # an id of the first page leaves: the cursor is an id, so nobody is skipped
            state, _ = handle(state, "big#00", RemoveTag("wf-0000"))
    assert pages == 3
    assert reached == [f"wf-{n:04d}" for n in range(2 * PAGE_SIZE + 50)]


def test_listing_pages_through_every_id() -> None:
    state: TagState | None = None
    for n in range(25):
        state, _ = handle(state, "t#00", AddTag(f"wf-{n:02d}"))
    seen: list[str] = []
    after: str | None = None
    while True:
        _, sent = handle(state, "t#00", ListTagIds(10, REPLY, after=after))
        (page,) = sent
        assert isinstance(page, TagIds)
        seen += page.workflow_ids
        if page.next_after is None:
            break
        after = page.next_after
    assert seen == [f"wf-{n:02d}" for n in range(25)]


def test_a_custom_id_starts_once_then_attaches_and_a_repeated_start_of_an_ended_run_is_not_restarted() -> None:
    key = CUSTOM_ID_PREFIX + "order-7"
    start = StartWorkflow("order", b"[]", reply=REPLY)
    state, sent = handle(None, key, StartByCustomId("wf-a", start, REPLY))
    assert [type(s) for s in sent] == [StartWorkflow, CustomIdAnswer] and sent[1].started
    assert key in sent[0].tags
    other = ReplyTo(REPLY.topic, "r2", identity=True)
    state, sent = handle(state, key, StartByCustomId("wf-b", start, other))
    assert isinstance(sent[0], GetWorkflowResult) and sent[1] == CustomIdAnswer("wf-a", started=False)
    state, _ = handle(state, key, RemoveTag("wf-a"))
    _, sent = handle(state, key, StartByCustomId("wf-a", start, REPLY))  # a redelivered first start
    assert sent == [CustomIdAnswer("wf-a", started=False)]
    _, sent = handle(state, key, StartByCustomId("wf-c", start, other))  # a new run under the same id
    assert [type(s) for s in sent] == [StartWorkflow, CustomIdAnswer] and sent[1].started
