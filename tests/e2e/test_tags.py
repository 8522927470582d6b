"""Tags and custom ids (the tag engine), end to end; each test also runs with every message twice."""

from __future__ import annotations

from pathlib import Path

import pytest

import pulsarflow as pf
from pulsarflow.engines import tag as tag_engine
from pulsarflow.messages import TagEngineMessage, TagOperation, TagState
from pulsarflow.messages import client as status
from pulsarflow.messages.tags import tag_buckets
from pulsarflow.testing import TestEnvironment
from pulsarflow.topics import Topics
from tests.e2e import flows


def test_find_ids_by_tag_lists_running_workflows_only(env: TestEnvironment) -> None:
    client = env.client()
    for i in range(5):
        client.start(flows.inbox, f"u{i}", id=f"inbox-{i}", tags=["team:blue", f"user:{i}"])
    client.start(flows.inbox, "other", id="inbox-x", tags=["team:red"])
    env.run_ready()
    assert sorted(client.find_ids("team:blue")) == [f"inbox-{i}" for i in range(5)]
    assert client.find_ids("user:3") == ["inbox-3"]
    client.signal("inbox-3", "message", "hi")
    assert client.get_handle("inbox-3").result() == "u3 got hi"
    assert sorted(client.find_ids("team:blue")) == [f"inbox-{i}" for i in (0, 1, 2, 4)]
    assert client.find_ids("user:3") == [] and client.find_ids("nobody") == []


def test_signal_and_cancel_every_workflow_of_a_tag(env: TestEnvironment, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tag_engine, "PAGE_SIZE", 2)  # many pages per bucket even with few workflows
    client = env.client()
    for i in range(30):
        client.start(flows.inbox, f"u{i}", id=f"t-{i}", tags=["batch:7" if i < 20 else "batch:8"])
    env.run_ready()
    client.signal_tag("batch:7", "message", "hello")
    env.run_ready()
    assert [client.get_handle(f"t-{i}").result() for i in range(20)] == [f"u{i} got hello" for i in range(20)]
    client.cancel_tag("batch:8", "batch withdrawn")
    env.run_ready()
    assert {client.status(f"t-{i}").status for i in range(20, 30)} == {status.CANCELLED}
    assert client.find_ids("batch:7") == [] and client.find_ids("batch:8") == []


def test_retry_every_failed_workflow_of_a_tag(env: TestEnvironment, tmp_path: Path) -> None:
    client = env.client()
    flags = [tmp_path / f"f{i}" for i in range(3)]
    handles = [client.start(flows.resumable, str(flag), id=f"r-{i}", tags=["night-run"])
               for i, flag in enumerate(flags)]
    env.run_ready()
    assert {client.status(h.id).status for h in handles} == {status.FAILED}
    assert sorted(client.find_ids("night-run")) == ["r-0", "r-1", "r-2"]  # failed ones stay, to be retried
    for flag in flags:
        flag.write_text("ok")
    client.retry_tag("night-run")
    env.run_ready()
    assert [client.get_handle(h.id).result() for h in handles] == [[3, "ok"]] * 3
    assert client.find_ids("night-run") == []


def test_custom_id_allows_one_running_workflow_at_a_time(env: TestEnvironment) -> None:
    client = env.client()
    first = client.start(flows.inbox, "ann", custom_id="mailbox-ann")
    second = client.start(flows.inbox, "ann again", custom_id="mailbox-ann")
    assert second.id == first.id
    client.signal(first.id, "message", "one")
    assert first.result() == "ann got one" and second.result() == "ann got one"
    third = client.start(flows.inbox, "ann later", custom_id="mailbox-ann")
    assert third.id != first.id  # the first has ended: a new one starts
    client.signal(third.id, "message", "two")
    assert third.result() == "ann later got two"


def test_bad_tags_are_refused_with_a_fix() -> None:
    env = TestEnvironment(*flows.ALL)
    client = env.client()
    with pytest.raises(pf.DefinitionError, match="write tags=\\['vip'\\]"):
        client.start(flows.inbox, "x", tags="vip")
    with pytest.raises(pf.DefinitionError, match="reserved; pass custom_id="):
        client.start(flows.inbox, "x", tags=["customId:me"])
    with pytest.raises(pf.DefinitionError, match="not both"):
        client.start(flows.inbox, "x", id="a", custom_id="b")


def test_a_bucket_of_100000_ids_is_worked_through_a_page_per_message() -> None:
    topics = Topics()
    engine = tag_engine.TagEngine(topics)
    key = tag_buckets("huge")[0]
    state = TagState(key, tuple(sorted(f"wf-{i}" for i in range(100_000))))  # the engine keeps ids sorted
    operation = TagOperation("op-1", "cancel", reason="too many")
    pages = 0
    while True:
        decision = engine.handle(state, TagEngineMessage("m", key, 0, operation), 0)
        assert decision.unchanged and len(decision.outgoing) <= tag_engine.PAGE_SIZE + 1
        pages += 1
        following = [o.message.message for o in decision.outgoing if o.topic == topics.tag_engine]
        if not following:
            break
        [operation] = following
    assert pages == 100_000 // tag_engine.PAGE_SIZE


def test_tags_reach_the_events_and_the_visibility_search() -> None:
    from pulsarflow.visibility.memory import InMemoryVisibilityStore
    from pulsarflow.visibility.model import Query

    env = TestEnvironment(*flows.ALL)
    client = env.client()
    client.start(flows.inbox, "a", id="vis-1", tags=["region:eu"])
    client.start(flows.inbox, "b", id="vis-2", tags=["region:us"])
    env.run_ready()
    [started] = [e for e in env.events_of("vis-1") if e.tags]
    assert started.tags == ("region:eu",)
    store = InMemoryVisibilityStore()
    for workflow_id in ("vis-1", "vis-2"):
        store.apply(env.events_of(workflow_id))
    found = store.search(Query(tag="region:eu"))
    assert [s.workflow_id for s in found.items] == ["vis-1"]


def test_listing_a_bucket_walks_its_pages_with_the_cursor() -> None:
    from pulsarflow.messages import AddTag, ClientMessage, ListTagIds, ReplyTo, TagIds

    engine, key, state = tag_engine.TagEngine(Topics()), "team#07", None
    for workflow_id in ("e", "a", "d", "b", "c"):
        state = engine.handle(state, TagEngineMessage(workflow_id, key, 0, AddTag(workflow_id)), 0).state
    pages, after = [], None
    while True:
        request = ListTagIds(2, ReplyTo("answers", "r"), after=after)
        [answer] = engine.handle(state, TagEngineMessage("l", key, 0, request), 0).outgoing
        assert isinstance(answer.message, ClientMessage) and isinstance(answer.message.message, TagIds)
        pages.append(answer.message.message.workflow_ids)
        after = answer.message.message.next_after
        if after is None:
            break
    assert pages == [("a", "b"), ("c", "d"), ("e",)]
