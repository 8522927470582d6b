"""Two MessageHandlers (two engine instances) racing on one workflow over Redis lose no update."""

from __future__ import annotations

import threading

import pytest

from pulsarflow.errors import StateConflictError
from pulsarflow.storage.redis import RedisStateStore
from tests.redis import flows, harness
from tests.redis.support import unique_prefix

pytestmark = pytest.mark.redis
SIGNALS = 40


def test_racing_handlers_lose_no_signal(redis_url: str) -> None:
    prefix = unique_prefix("race")
    stores = [harness.SlowReads(RedisStateStore.from_url(redis_url, prefix=prefix)) for _ in range(2)]
    brokers = [harness.Broker(store, (flows.collector,)) for store in stores]
    workflow_id = "race-1"
    brokers[0].workflows.handle(harness.TOPICS.workflow_engine, harness.start(workflow_id, "collector", SIGNALS))
    redeliveries = [0, 0]

    def deliver(n: int) -> None:
        for i in range(n, SIGNALS, 2):  # instance n gets every other signal
            payload = harness.signal(workflow_id, f"sig-{i}", "add", i)
            while True:
                try:
                    brokers[n].workflows.handle(harness.TOPICS.workflow_engine, payload)
                    break
                except StateConflictError:  # retries exhausted: the broker would redeliver
                    redeliveries[n] += 1

    threads = [threading.Thread(target=deliver, args=(n,)) for n in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sum(s.conflicts for s in stores) > 0, "the handlers never raced; the test proves nothing"
    state = harness.workflow_state(stores[0].store, workflow_id)
    assert state is not None and state.status == "COMPLETED"
    assert sorted(state.signal_ids) == sorted(f"sig-{i}" for i in range(SIGNALS))
    assert state.result is not None
    result = harness.CONVERTER.decode(state.result)[0]
    assert sorted(result) == list(range(SIGNALS))
    stores[0].store.delete(workflow_id)
