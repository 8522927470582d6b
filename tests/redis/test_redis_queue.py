"""The Redis queue of the embedded runtime: one owner at a time, takeovers in order, outages ridden out."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import pytest

import pulsarflow as pf
from pulsarflow.clock import SystemClock
from pulsarflow.embedded import EmbeddedEnvironment
from pulsarflow.storage.redis import RedisStateStore
from pulsarflow.testing import TestEnvironment
from pulsarflow.transport.redis import RedisDelivery, RedisTransport, queue_prefix, sibling_prefix
from tests.e2e import flows
from tests.redis.support import PrivateRedis, unique_prefix

pytestmark = pytest.mark.redis
TOPIC = "persistent://public/default/queue-tests"
BOUND_S = 30  # loops below give up after this long


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    name = unique_prefix("queue")
    yield name
    client = RedisStateStore.from_url(redis_url).client
    for pattern in (name + "*", queue_prefix(name) + "*", sibling_prefix(name, "tag") + "*"):
        for key in client.scan_iter(match=pattern):
            client.delete(key)


def queue(url: str, prefix: str, **options: object) -> RedisTransport:
    return RedisTransport.from_url(url, prefix, SystemClock(), **options)


def kill(q: RedisTransport) -> None:
    """What SIGKILL does to a queue's process: nothing settled, nothing released, no more lease renewals."""
    q._finalizer.detach()
    q._keeper.stop()


def poll_within(q: RedisTransport, bound_s: float = BOUND_S) -> RedisDelivery:
    deadline = time.monotonic() + bound_s
    while time.monotonic() < deadline:
        delivery = q.poll()
        if delivery is not None:
            return delivery
        time.sleep(0.01)
    raise AssertionError(f"nothing handed out within {bound_s}s")


def test_a_takeover_hands_out_what_the_dead_owner_had_taken_first_in_order(redis_url: str, prefix: str) -> None:
    first = queue(redis_url, prefix, lease_ms=300)
    for n in range(5):
        first.send(TOPIC, "k", b"%d" % n)
    first.flush()
    taken = [first.poll(), first.poll()]  # 0 and 1 taken, never settled
    assert [d.payload for d in taken if d] == [b"0", b"1"]
    kill(first)
    second = queue(redis_url, prefix, lease_ms=300)
    second.send(TOPIC, "k", b"5")
    second.flush()
    assert second.poll() is None, "the dead owner's lease still holds"
    got = [poll_within(second)]
    got += [d for d in iter(second.poll, None)]
    assert [d.payload for d in got] == [b"%d" % n for n in range(6)]
    for d in got:
        second.ack(d)
    second.close()
    assert second.pending() == 0


def test_a_second_live_process_waits_and_takes_over_once_the_first_closes(redis_url: str, prefix: str,
                                                                          caplog: pytest.LogCaptureFixture) -> None:
    first, second = queue(redis_url, prefix), queue(redis_url, prefix)
    first.send(TOPIC, "k", b"for the first")
    first.flush()
    delivery = first.poll()
    assert delivery is not None
    with caplog.at_level(logging.INFO, logger="pulsarflow.transport.redis"):
        second.send(TOPIC, "k", b"sent while waiting")
        second.flush()
        assert second.poll() is None and second.next_due_ms() is not None
        assert first.token in caplog.text
    first.ack(delivery)
    first.close()  # released at once: no need to wait for the lease
    assert poll_within(second, 2.0).payload == b"sent while waiting"
    second.close()


def test_the_lease_outlives_a_long_handler(redis_url: str, prefix: str) -> None:
    first = queue(redis_url, prefix, lease_ms=300)
    first.send(TOPIC, "k", b"slow")
    first.flush()
    assert first.poll() is not None
    time.sleep(1.0)  # a task running more than three leases: the keeper renews the lease meanwhile
    second = queue(redis_url, prefix, lease_ms=300)
    assert second.poll() is None, "a live owner lost the queue while a handler ran"
    first.close()
    second.close()


def test_acknowledgements_made_while_redis_is_down_are_applied_once_it_is_back(
        private_redis: PrivateRedis, caplog: pytest.LogCaptureFixture) -> None:
    q = RedisTransport.from_url(private_redis.url, "outage:", SystemClock(), prefetch=1)
    for payload in (b"one", b"two"):
        q.send(TOPIC, "k", payload)
    q.flush()
    one = q.poll()
    assert one is not None
    private_redis.stop()
    q.ack(one)
    with caplog.at_level(logging.ERROR, logger="pulsarflow.transport.redis"):
        assert q.poll() is None  # no error raised into the loop: it looks again later
    assert "Is redis-server running" in caplog.text and private_redis.url in caplog.text
    private_redis.start()
    two = poll_within(q)
    assert two.payload == b"two"
    q.ack(two)
    q.flush()
    assert q.pending() == 0
    q.close()


OUTAGE: dict[str, PrivateRedis] = {}


@pf.task(retry=pf.RetryPolicy(max_attempts=1))
def stop_redis() -> str:
    """Stops Redis the first time it runs, and has it started again 3 s later (longer than redis-py retries)."""
    server = OUTAGE.pop("server", None)
    if server is not None:
        server.stop()
        threading.Timer(3.0, server.start).start()
    return "ran"


@pf.workflow(name="queue-tests-outage")
async def through_an_outage(ctx: pf.WorkflowContext) -> list[str]:
    return [await ctx.task(stop_redis), await ctx.task(stop_redis)]


def test_the_embedded_loop_rides_out_a_redis_outage(private_redis: PrivateRedis,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    """Redis stops while a task runs: its outcome cannot be sent, the queue cannot be read; all of it waits."""
    store = RedisStateStore.from_url(private_redis.url, prefix="outage:", timeout_s=0.5)
    env = EmbeddedEnvironment(through_an_outage, stop_redis, store=store)
    OUTAGE["server"] = private_redis
    try:
        with caplog.at_level(logging.ERROR):
            assert env.client().start(through_an_outage).result(timeout=BOUND_S) == ["ran", "ran"]
        assert "could not reach a backend" in caplog.text, "the outage happened while the outcome was sent"
        assert env.dead_letters == []
        env.run_until_idle()
        assert env.transport.pending() == 0
    finally:
        env.close()


def test_batches_and_tags_carry_over_to_the_next_environment(redis_url: str, prefix: str) -> None:
    store = RedisStateStore.from_url(redis_url, prefix=prefix)
    first = EmbeddedEnvironment(*flows.ALL, store=store, batch_size=20, fail_fast=True)
    client = first.client()
    handles = [client.start(flows.sequence, 3) for _ in range(10)]
    for n in range(3):
        client.start(flows.inbox, f"u{n}", id=f"inbox-{n}", tags=["team:blue"])
    assert [h.result(timeout=BOUND_S) for h in handles] == [3] * 10
    first.close()
    second = EmbeddedEnvironment(*flows.ALL, store=store, batch_size=20, fail_fast=True)
    try:
        client = second.client()
        assert sorted(client.find_ids("team:blue")) == ["inbox-0", "inbox-1", "inbox-2"]
        client.signal_tag("team:blue", "message", "hi")
        assert [client.get_handle(f"inbox-{n}").result(timeout=BOUND_S) for n in range(3)] == [
            f"u{n} got hi" for n in range(3)]
        second.run_until_idle()
        assert second.transport.pending() == 0
    finally:
        second.close()


def test_timers_follow_the_environment_clock(redis_url: str, prefix: str) -> None:
    store = RedisStateStore.from_url(redis_url, prefix=prefix)
    env = TestEnvironment(*flows.ALL, store=store)  # a virtual clock: 30 days pass at once, in Redis too
    assert isinstance(env.transport, RedisTransport)
    try:
        assert env.client().start(flows.sleeper, 30).result(timeout=BOUND_S) == "30 days then 3600 s"
        assert env.transport.pending() == 0
    finally:
        env.close()
