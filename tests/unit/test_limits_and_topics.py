"""Limits checked at the client before anything is sent, and again at the engine's input; reply
topics restricted to the app's own client topics, at the input and where the runtime publishes."""

from __future__ import annotations

from typing import Any

import pytest

from pulsarflow.clock import VirtualClock
from pulsarflow.codec import Codec
from pulsarflow.engines.outgoing import Decision, Outgoing
from pulsarflow.errors import LimitExceededError
from pulsarflow.messages import (
    ClientMessage,
    DeadLetter,
    ReplyTo,
    StartWorkflow,
    WorkflowCompleted,
    WorkflowEngineMessage,
)
from pulsarflow.runtime import deadletters
from pulsarflow.runtime.admission import Admission
from pulsarflow.runtime.handler import MessageHandler
from pulsarflow.runtime.limits import MAX_ID_CHARS
from pulsarflow.topics import Topics
from pulsarflow.transport.memory import InMemoryTransport
from tests.e2e import flows

CODEC = Codec()



def crafted_start(env: Any, workflow_id: str, reply_topic: str | None = None) -> None:
    reply = ReplyTo(reply_topic or env.topics.client("crafted"), "r-1")
    start = StartWorkflow("sequence", b"[1]", reply=reply)
    env.transport.send(env.topics.workflow_engine, workflow_id[:50],
                       CODEC.encode(WorkflowEngineMessage("m-1", workflow_id, 0, start)))


@pytest.mark.parametrize(("workflow_id", "complaint"), [
    ("", "workflow id must be a non-empty string"),
    ("x" * (MAX_ID_CHARS + 1), "has 1,001 characters; at most 1,000 are allowed"),
    ("a\0b", "contains a NUL character"),
    ("\ud800", "is not valid unicode text"),
])
def test_the_client_refuses_a_bad_id_before_sending_anything(env: Any, workflow_id: str, complaint: str) -> None:
    client = env.client()
    sent = env.transport.sent
    with pytest.raises(LimitExceededError, match=complaint):
        client.start(flows.sequence, 1, id=workflow_id)
    assert env.transport.sent == sent


def test_an_id_of_the_limit_works(env: Any) -> None:
    handle = env.client().start(flows.sequence, 2, id="x" * MAX_ID_CHARS)
    assert handle.result(timeout=60) == 1


def test_the_client_refuses_a_payload_over_the_brokers_limit_and_says_what_to_do(env: Any) -> None:
    client = env.client()
    sent = env.transport.sent
    with pytest.raises(LimitExceededError) as caught:
        client.start(flows.sequence, "x" * (6 * 1024 * 1024), id="big")
    text = str(caught.value)
    assert "StartWorkflow for 'big' is 6,291," in text
    assert "accepts 5,242,880 bytes per message (maxMessageSize)" in text
    assert "Pass large data by reference" in text and "raise maxMessageSize" in text
    assert env.transport.sent == sent
    with pytest.raises(LimitExceededError, match="SendSignal"):
        client.signal("big", "s", "y" * (6 * 1024 * 1024))


def test_a_crafted_message_with_a_huge_id_is_dead_lettered_with_the_reason(env: Any) -> None:
    crafted_start(env, "w" * 10_000)
    env.run_until_idle()
    [letter] = env.dead_letters
    assert letter.kind == deadletters.REFUSED and letter.attempts == 1
    assert "has 10,000 characters; at most 2,000 are allowed" in letter.reason
    assert len(env.store) == 0


def test_a_reply_topic_elsewhere_is_refused_and_dead_lettered_and_nothing_is_sent_there(env: Any) -> None:
    published: list[str] = []
    original = env.transport.send

    def spy(topic: str, key: str, payload: bytes, deliver_at_ms: int | None = None) -> None:
        published.append(topic)
        original(topic, key, payload, deliver_at_ms)

    env.transport.send = spy
    for target in ("persistent://public/default/stolen", "non-persistent://other/ns/pulsarflow-client-x",
                   env.topics.client("../../x"), env.topics.workflow_engine):
        crafted_start(env, f"wf-{len(published)}", target)
    env.run_until_idle()
    assert [letter.kind for letter in env.dead_letters] == [deadletters.REFUSED] * 4
    assert all("is not a client topic of app 'pulsarflow'" in letter.reason for letter in env.dead_letters)
    assert len(env.store) == 0  # none of them started a workflow
    assert set(published) == {env.topics.workflow_engine, env.topics.dead_letters}


def test_the_apps_own_client_topics_are_answered(env: Any) -> None:
    crafted_start(env, "ok-1", env.topics.client("crafted"))
    answers: list[bytes] = []
    env.client()  # any client: the embedded environment routes answers to listeners by topic
    env._listeners[env.topics.client("crafted")] = answers.append
    env.run_until_idle()
    assert env.dead_letters == []
    [answer] = [CODEC.decode(ClientMessage, a) for a in answers]
    assert isinstance(answer.message, WorkflowCompleted)


class Scripted:
    """An engine that decides what a test tells it to."""

    input_type, state_type = WorkflowEngineMessage, None

    def __init__(self, outgoing: list[Outgoing]) -> None:
        self.outgoing = outgoing

    @staticmethod
    def key(envelope: WorkflowEngineMessage) -> str:
        return envelope.workflow_id

    def handle(self, state: Any, envelope: Any, now_ms: int) -> Decision[Any]:
        return Decision(None, self.outgoing, unchanged=True)


def scripted_handler(outgoing: list[Outgoing]) -> tuple[MessageHandler, InMemoryTransport, Topics]:
    topics, clock = Topics(), VirtualClock()
    transport = InMemoryTransport(clock)
    handler = MessageHandler(Scripted(outgoing), CODEC, transport, clock, None, topics.dead_letters,
                             admission=Admission(topics, max_message_bytes=256 * 1024))
    return handler, transport, topics


def drained(transport: InMemoryTransport) -> list[Any]:
    return [d for d in iter(transport.poll, None)]


def test_the_runtime_never_publishes_to_a_topic_outside_the_app() -> None:
    answer = ClientMessage("m", "wf", "r", 0, WorkflowCompleted(b"[1]"))
    topics = Topics()
    handler, transport, _ = scripted_handler([Outgoing("persistent://public/default/elsewhere", "wf", answer),
                                              Outgoing(topics.client("c1"), "wf", answer)])
    handler.handle(topics.workflow_engine, CODEC.encode(WorkflowEngineMessage("m", "wf", 0, StartWorkflow("x", b"[]"))))
    deliveries = drained(transport)
    assert [d.topic for d in deliveries] == [topics.client("c1"), topics.dead_letters]
    letter = CODEC.decode(DeadLetter, deliveries[1].payload)
    assert letter.topic == "persistent://public/default/elsewhere" and letter.kind == deadletters.REFUSED
    assert "refused to publish to 'persistent://public/default/elsewhere'" in letter.reason


def test_a_decision_with_a_message_over_the_limit_sends_nothing_and_its_input_is_dead_lettered() -> None:
    topics = Topics()
    small = ClientMessage("m", "wf", "r", 0, WorkflowCompleted(b"[1]"))
    huge = ClientMessage("m", "wf", "r", 0, WorkflowCompleted(b"x" * 300_000))
    handler, transport, _ = scripted_handler([Outgoing(topics.client("c1"), "wf", small),
                                              Outgoing(topics.client("c1"), "wf", huge)])
    handler.handle(topics.workflow_engine, CODEC.encode(WorkflowEngineMessage("m", "wf", 0, StartWorkflow("x", b"[]"))))
    [delivery] = drained(transport)
    letter = CODEC.decode(DeadLetter, delivery.payload)
    assert delivery.topic == topics.dead_letters and letter.kind == deadletters.REFUSED
    assert "bytes encoded; the broker accepts 262,144 bytes per message" in letter.reason


def test_the_reply_check_covers_every_place_the_schemas_put_a_reply_topic() -> None:
    """Every path from an engine's input envelope to a ReplyTo is one ``admission.replies`` reads."""

    def paths(schema: Any, trail: tuple[str, ...], seen: frozenset[str]) -> list[tuple[str, ...]]:
        if isinstance(schema, list):
            return [p for branch in schema for p in paths(branch, trail, seen)]
        if isinstance(schema, str) and schema.startswith("pulsarflow."):
            schema = CODEC.schema_json(schema)
        if not isinstance(schema, dict) or schema.get("type") != "record":
            return []
        if schema["name"] == "pulsarflow.ReplyTo":
            return [trail]
        if schema["name"] in seen:
            return []
        inner = seen | {schema["name"]}
        return [p for f in schema["fields"] for p in paths(f["type"], (*trail, f["name"]), inner)]

    found = {p for name in ("WorkflowEngineMessage", "TagEngineMessage", "TaskExecutorMessage")
             for p in paths(CODEC.schema_json(name), (), frozenset())}
    assert found == {("message", "reply"), ("message", "start", "reply"), ("message", "signal", "reply"),
                     ("message", "update", "reply")}
    from pulsarflow.messages import SendSignal, SignalWithStart, StartWorkflow, WorkflowEngineMessage
    from pulsarflow.runtime.admission import replies

    one, two = ReplyTo("t1", "r1"), ReplyTo("t2", "r2")
    both = WorkflowEngineMessage("m", "w", 0, SignalWithStart(StartWorkflow("f", b"", reply=one),
                                                              SendSignal("s", "go", b"", reply=two)))
    assert list(replies(both)) == [one, two]
