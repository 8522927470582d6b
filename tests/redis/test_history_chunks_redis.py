"""History chunks on the real redis-server: fields of the state's own hash, written by the
compare-and-set script with the head, so a writer that lost the race leaves no chunk behind."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from pulsarflow.codec import Codec
from pulsarflow.errors import StateConflictError
from pulsarflow.messages import Arrival, Command, WorkflowState
from pulsarflow.runtime.history import HistoryChunks
from pulsarflow.storage.redis import RedisStateStore
from tests.redis.support import require_redis, unique_prefix

pytestmark = pytest.mark.redis
CODEC = Codec()


@pytest.fixture
def store() -> Iterator[RedisStateStore]:
    made = RedisStateStore.from_url(require_redis(), prefix=unique_prefix("chunks"), retention_ms=200)
    yield made
    for key in made.client.scan_iter(match=f"{made.prefix}*"):
        made.client.delete(key)
    made.close()


def steps(state: WorkflowState, n: int, at_ms: int = 0) -> WorkflowState:
    c, a = len(state.commands), len(state.arrivals)
    return replace(state, commands=state.commands + tuple(Command(c + i, "TASK", "t") for i in range(n)),
                   arrivals=state.arrivals + tuple(Arrival(a + i, at_ms) for i in range(n)))


def test_the_loser_of_a_race_writes_neither_head_nor_chunk(store: RedisStateStore) -> None:
    chunks = HistoryChunks(CODEC, 4)
    start = steps(WorkflowState("raced", "flow", b"[]", "RUNNING", 0), 3)
    first = chunks.encode(start, None)
    store.put_parts("raced", first.head, 0, first.parts)
    winner = chunks.encode(steps(first.state, 2, at_ms=1), first.state)  # both seal chunk 0.1 ...
    loser = chunks.encode(steps(first.state, 2, at_ms=2), first.state)  # ... with other content
    assert [n for n, _ in winner.parts.write] == [n for n, _ in loser.parts.write] == ["0.1"]
    store.put_parts("raced", winner.head, 1, winner.parts)
    with pytest.raises(StateConflictError):
        store.put_parts("raced", loser.head, 1, loser.parts)
    stored = store.get("raced")
    assert stored is not None and stored.version == 2
    whole = chunks.read(store, "raced", stored)
    assert [a.at_ms for a in whole.arrivals] == [0, 0, 0, 1, 1]
    assert store.client.keys(f"{store.prefix}*") == [f"{store.prefix}raced".encode()], "one key per state"


def test_a_finished_state_expires_with_its_chunks(store: RedisStateStore) -> None:
    chunks = HistoryChunks(CODEC, 4)
    done = replace(steps(WorkflowState("done", "flow", b"[]", "COMPLETED", 0), 10), closed_at_ms=5)
    encoded = chunks.encode(done, None)
    store.put_parts("done", encoded.head, 0, encoded.parts, finished=True)
    ttl = store.client.pttl(f"{store.prefix}done")
    assert 0 < ttl <= 200, "the chunks are fields of the key that expires"
    assert set(store.client.hkeys(f"{store.prefix}done")) == {b"v", b"d", *(f"p:0.{i}".encode() for i in range(5))}
