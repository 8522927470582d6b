"""Batched handling over Redis: one round trip per batch for reads and writes, and racing batches lose nothing."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from pulsarflow.errors import PartialBatchError
from pulsarflow.runtime.batch import BatchHandler
from pulsarflow.storage import Versioned
from pulsarflow.storage.redis import RedisStateStore
from tests.redis import flows, harness
from tests.redis.support import unique_prefix

pytestmark = pytest.mark.redis
SIGNALS = 60


class CountingStore(RedisStateStore):
    """Counts batched calls and conflicts; reads are slowed so that two instances interleave."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.batched_reads = self.batched_writes = self.conflicts = 0

    def get_many(self, keys: list[str]) -> dict[str, Versioned]:
        self.batched_reads += 1
        found = super().get_many(keys)
        time.sleep(0.003)
        return found

    def put_many(self, writes: list[tuple[str, bytes, int, bool]]) -> list[str]:
        self.batched_writes += 1
        stale = super().put_many(writes)
        self.conflicts += len(stale)
        return stale


def store(redis_url: str, prefix: str) -> CountingStore:
    base = RedisStateStore.from_url(redis_url, prefix=prefix)
    return CountingStore(base.client, prefix)


def test_get_many_and_put_many_keep_compare_and_set(redis_url: str) -> None:
    s = store(redis_url, unique_prefix("many"))
    assert s.get_many(["a", "b"]) == {}
    assert s.put_many([("a", b"1", 0, False), ("b", b"2", 0, True)]) == []
    assert s.get_many(["a", "b", "c"]) == {"a": Versioned(b"1", 1), "b": Versioned(b"2", 1)}
    assert s.put_many([("a", b"lost", 0, False), ("b", b"3", 1, False)]) == ["a"]  # a's expectation is stale
    assert s.get("a") == Versioned(b"1", 1) and s.get("b") == Versioned(b"3", 2)


def test_racing_batches_lose_no_signal(redis_url: str) -> None:
    prefix = unique_prefix("batch-race")
    stores = [store(redis_url, prefix) for _ in range(2)]
    brokers = [harness.Broker(s, (flows.collector,)) for s in stores]
    batches = [BatchHandler(b.workflows) for b in brokers]
    workflow_id = "batch-race-1"
    batches[0].handle_batch([(harness.TOPICS.workflow_engine, harness.start(workflow_id, "collector", SIGNALS))])

    def deliver(n: int) -> None:
        payloads = [harness.signal(workflow_id, f"sig-{i}", "add", i) for i in range(n, SIGNALS, 2)]
        for first in range(0, len(payloads), 5):
            batch = [(harness.TOPICS.workflow_engine, p) for p in payloads[first:first + 5]]
            for _ in range(20):  # as a consumer does: what lost too many races is delivered again
                try:
                    batches[n].handle_batch(batch)
                    break
                except PartialBatchError as exc:
                    batch = [batch[i] for i in exc.pending]

    threads = [threading.Thread(target=deliver, args=(n,)) for n in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert all(s.batched_reads >= SIGNALS // 10 and s.batched_writes >= 1 for s in stores)
    assert sum(s.conflicts for s in stores) > 0, "the batches never raced; the test proves nothing"
    state = harness.workflow_state(stores[0], workflow_id)
    assert state is not None and state.status == "COMPLETED"
    assert sorted(state.signal_ids) == sorted(f"sig-{i}" for i in range(SIGNALS))
    assert state.result is not None
    assert sorted(harness.CONVERTER.decode(state.result)[0]) == list(range(SIGNALS))
    stores[0].delete(workflow_id)
