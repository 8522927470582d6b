"""Transport contracts as plain checks.

``CHECKS``: the embedded queue's contract (``transport/queue.py``) over any
``QueueTransport``; tests/contract/test_transport.py runs them over the in-memory queue
and the Redis one. A check gets a ``Subject``: a way to make an empty queue on a virtual
clock, so that delays pass at once.

``PORT_CHECKS``: the ``Transport`` port's contract (what the runtime relies on: per-key
order, delayed delivery, flush) over any transport with a way to read what it sent; run
over the in-memory queue and over Pulsar (tests/integration/test_transport_pulsar.py).
Each check raises AssertionError when the transport breaks the contract.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from pulsarflow.clock import VirtualClock
from pulsarflow.transport import Transport
from pulsarflow.transport.queue import Delivered, QueueTransport

TOPIC, OTHER = "persistent://public/default/contract-a", "persistent://public/default/contract-b"


@dataclass
class Subject:
    """``make(clock, duplicate)`` returns an empty queue; every queue made is closed by ``cleanup``."""

    make: Callable[[VirtualClock, bool], QueueTransport]
    clock: VirtualClock = field(default_factory=VirtualClock)
    made: list[QueueTransport] = field(default_factory=list)

    def queue(self, duplicate: bool = False) -> QueueTransport:
        queue = self.make(self.clock, duplicate)
        self.made.append(queue)
        return queue

    def cleanup(self) -> None:
        for queue in self.made:
            queue.close()


def drain(queue: QueueTransport) -> list[Delivered]:
    """Every message due now, each acknowledged once handed out."""
    out = []
    while (delivery := queue.poll()) is not None:
        out.append(delivery)
        queue.ack(delivery)
    queue.flush()
    return out


def payloads(deliveries: list[Delivered]) -> list[bytes]:
    return [d.payload for d in deliveries]


def same_key_keeps_send_order(s: Subject) -> None:
    q = s.queue()
    for i in range(20):
        q.send(TOPIC if i % 3 else OTHER, f"k{i % 2}", b"%d" % i)
    q.flush()
    got = drain(q)
    assert sorted(payloads(got)) == sorted(b"%d" % i for i in range(20)), "every message, once"
    for topic in (TOPIC, OTHER):
        for key in ("k0", "k1"):
            mine = [int(d.payload) for d in got if d.topic == topic and d.key == key]
            assert mine == sorted(mine), f"{topic} {key} out of send order: {mine}"
    assert q.pending() == 0 and q.next_due_ms() is None


def delayed_messages_wait_for_their_time(s: Subject) -> None:
    q, now = s.queue(), s.clock.now_ms()
    q.send(TOPIC, "k", b"late", now + 2_000)
    q.send(TOPIC, "k", b"soon", now + 1_000)
    q.send(TOPIC, "k", b"soon too", now + 1_000)
    q.send(TOPIC, "k", b"past", now - 5)
    q.send(TOPIC, "k", b"now")
    q.flush()
    assert payloads(drain(q)) == [b"past", b"now"], "due or past-due messages are ready at once, in send order"
    assert q.next_due_ms() == now + 1_000 and q.pending() == 3
    s.clock.sleep_until(now + 999)
    assert drain(q) == [], "a delayed message came out early"
    s.clock.sleep_until(now + 1_000)
    assert payloads(drain(q)) == [b"soon", b"soon too"], "equal times keep send order"
    assert q.next_due_ms() == now + 2_000
    s.clock.sleep_until(now + 10_000)
    assert payloads(drain(q)) == [b"late"] and q.next_due_ms() is None and q.pending() == 0


def bytes_topics_and_keys_come_back_unchanged(s: Subject) -> None:
    q = s.queue()
    sent = [(TOPIC, "k", bytes(range(256))), (OTHER, "", b""), (TOPIC, "kéy/ü ☃ \U0001f600", b"x" * (1 << 20)),
            ("persistent://public/default/t\u00e9", "e\u0301", b"\x00\xff\x00"),
            ("persistent://public/default/t\u00e9", "\u00e9", b"nfc")]
    for topic, key, payload in sent:
        q.send(topic, key, payload)
    q.flush()
    assert [(d.topic, d.key, d.payload) for d in drain(q)] == sent


def acknowledged_messages_are_gone(s: Subject) -> None:
    q = s.queue()
    q.send(TOPIC, "k", b"one")
    q.flush()
    delivery = q.poll()
    assert delivery is not None and delivery.payload == b"one"
    q.ack(delivery)
    q.flush()
    assert q.poll() is None and q.pending() == 0 and q.next_due_ms() is None


def requeued_messages_come_back_at_their_time(s: Subject) -> None:
    q, now = s.queue(), s.clock.now_ms()
    q.send(TOPIC, "k", b"again")
    q.flush()
    delivery = q.poll()
    assert delivery is not None
    q.requeue(delivery, now + 500)
    q.flush()
    assert q.poll() is None and q.pending() == 1 and q.next_due_ms() == now + 500
    s.clock.sleep_until(now + 500)
    assert [(d.topic, d.key, d.payload) for d in drain(q)] == [(TOPIC, "k", b"again")]
    assert q.pending() == 0


def duplicates_are_delivered_twice(s: Subject) -> None:
    q, now = s.queue(duplicate=True), s.clock.now_ms()
    q.send(TOPIC, "k", b"a")
    q.send(TOPIC, "k", b"t", now + 100)
    q.flush()
    assert payloads(drain(q)) == [b"a", b"a"]
    s.clock.sleep_until(now + 100)
    assert payloads(drain(q)) == [b"t", b"t"]
    assert q.sent == 2, "sent counts the sends, not the copies"


CHECKS: dict[str, Callable[[Subject], None]] = {
    check.__name__: check for check in (
        same_key_keeps_send_order, delayed_messages_wait_for_their_time, bytes_topics_and_keys_come_back_unchanged,
        acknowledged_messages_are_gone, requeued_messages_come_back_at_their_time, duplicates_are_delivered_twice)
}


@dataclass
class Wire:
    """A transport and its far end: ``topic()`` names a fresh topic, ``read(topic, n)`` returns the
    next ``n`` (key, payload) delivered there in arrival order (fewer if they do not come),
    ``wait_ms`` lets time pass and ``now_ms`` tells it."""

    transport: Transport
    topic: Callable[[], str]
    read: Callable[[str, int], list[tuple[str, bytes]]]
    wait_ms: Callable[[int], None]
    now_ms: Callable[[], int]


def flushed_messages_arrive_unchanged(w: Wire) -> None:
    topic = w.topic()
    sent = [("k", bytes(range(256))), ("kéy/ü ☃", b"\x00\xff\x00"), ("k", b"x" * 300_000)]
    for key, payload in sent:
        w.transport.send(topic, key, payload)
    w.transport.flush()
    assert w.read(topic, len(sent)) == sent, "flushed messages must arrive as sent, keys and bytes unchanged"


def each_key_keeps_its_send_order(w: Wire) -> None:
    topic = w.topic()
    for i in range(30):
        w.transport.send(topic, f"k{i % 3}", b"%d" % i)
    w.transport.flush()
    got = w.read(topic, 30)
    assert sorted(p for _, p in got) == sorted(b"%d" % i for i in range(30)), "every message, once"
    for key in ("k0", "k1", "k2"):
        mine = [int(p) for k, p in got if k == key]
        assert mine == sorted(mine), f"key {key} out of send order: {mine}"


def a_delayed_message_waits_for_its_time(w: Wire, delay_ms: int = 3_000) -> None:
    topic = w.topic()
    due = w.now_ms() + delay_ms
    w.transport.send(topic, "k", b"later", due)
    w.transport.send(topic, "k2", b"now")
    w.transport.flush()
    assert w.read(topic, 1) == [("k2", b"now")], "an undelayed message must not wait behind a delayed one"
    arrived = w.read(topic, 1)
    assert arrived == [("k", b"later")], f"the delayed message never came: {arrived}"
    assert w.now_ms() >= due - 50, f"the delayed message came {due - w.now_ms()} ms early"


PORT_CHECKS: dict[str, Callable[[Wire], None]] = {
    check.__name__: check for check in (
        flushed_messages_arrive_unchanged, each_key_keeps_its_send_order, a_delayed_message_waits_for_its_time)
}
