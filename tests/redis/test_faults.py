"""Redis going away: restarts lose no workflow, and an outage fails messages without dropping them."""

from __future__ import annotations

import logging

import pytest

from pulsarflow.errors import BackendError
from pulsarflow.storage.redis import RedisStateStore
from tests.e2e import flows
from tests.redis import harness
from tests.redis.support import PrivateRedis

pytestmark = pytest.mark.redis
ITEMS = (flows.sequence, flows.add, flows.two_signals)


def steps(broker: harness.Broker, count: int) -> None:
    for _ in range(count):
        assert broker.step(), "ran out of messages early"


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_a_redis_restart_during_a_run_loses_no_workflow(private_redis: PrivateRedis, how: str) -> None:
    store = RedisStateStore.from_url(private_redis.url, prefix="faults:")
    broker = harness.Broker(store, ITEMS)
    for i in range(5):
        broker.send(harness.start(f"seq-{i}", "sequence", 4))
    broker.send(harness.start("signals", "two_signals"))
    steps(broker, 12)  # every workflow started, some tasks done
    getattr(private_redis, how)()  # "kill": SIGKILL; appendfsync always keeps every acknowledged write
    private_redis.start()
    broker.send(harness.signal("signals", "s1", "item", "first"))
    steps(broker, 6)
    private_redis.stop()
    private_redis.start()
    broker.send(harness.signal("signals", "s2", "item", "second"))
    broker.run()
    assert [broker.result(f"seq-{i}") for i in range(5)] == [6] * 5
    assert broker.result("signals") == ["first", "second"]
    assert broker.failures == []  # the restarts happened between messages: nothing to redeliver


def test_with_redis_down_messages_fail_loudly_and_are_handled_once_it_is_back(
        private_redis: PrivateRedis, caplog: pytest.LogCaptureFixture) -> None:
    store = RedisStateStore.from_url(private_redis.url, prefix="faults:", timeout_s=1.0)
    broker = harness.Broker(store, ITEMS)
    broker.send(harness.start("down-1", "sequence", 3))
    steps(broker, 2)  # started, first task ran: its TaskCompleted waits for the engine
    private_redis.stop()
    with caplog.at_level(logging.ERROR, logger="pulsarflow.storage.redis"):
        steps(broker, 3)  # each attempt fails and puts the message back
    assert len(broker.failures) == 3 and all(isinstance(e, BackendError) for e in broker.failures)
    assert "Is redis-server running" in caplog.text and private_redis.url in caplog.text
    assert broker.transport.pending() == 1, "the failed message must still be queued, nothing else"
    private_redis.start()
    broker.run()
    assert broker.result("down-1") == 3
    state = harness.workflow_state(store, "down-1")
    assert state is not None and state.status == "COMPLETED" and len(state.commands) == 3
