"""Workflows whose history is stored in chunks, end to end over the embedded runtime, on every
backend pytest reaches: memory, Redis (``REDIS_URL``), and function state over a dict
standing in for the function Context. The chunk checks of the store contract
(``storage/contract_parts.py``) run in tests/contract/test_state_store.py with the others.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import pulsarflow as pf
from pulsarflow.codec import Codec
from pulsarflow.messages import WorkflowState
from pulsarflow.pulsar.function_state import FunctionStateStore
from pulsarflow.runtime.history import CHUNK_ENTRIES, read_whole
from pulsarflow.storage import PartStore
from pulsarflow.storage.memory import InMemoryStateStore
from tests.contract.test_function_state_layout import DictContext
from tests.redis.support import require_redis, unique_prefix

CODEC = Codec()


@pf.task(service="chunks")
def inc(n: int) -> int:
    return n + 1


@pf.workflow(name="chunked-steps")
async def stepper(ctx: pf.WorkflowContext, count: int, then_wait: bool) -> int:
    n = 0
    for _ in range(count):
        n = await ctx.task(inc, n)
    if then_wait:
        n += int(await ctx.wait_signal("more"))
    return n


@pf.workflow(name="chunked-rounds")
async def rounds(ctx: pf.WorkflowContext, left: int, per_round: int, total: int) -> int:
    for _ in range(per_round):
        total = await ctx.task(inc, total)
    if left > 1:
        ctx.continue_as_new(left - 1, per_round, total)
    return total


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis), "function"])
def store(request: pytest.FixtureRequest) -> Iterator[Any]:
    if request.param == "memory":
        yield InMemoryStateStore()
    elif request.param == "function":
        yield FunctionStateStore(DictContext())
    else:
        from pulsarflow.storage.redis import RedisStateStore

        made = RedisStateStore.from_url(require_redis(), prefix=unique_prefix("chunked"))
        yield made
        for key in made.client.scan_iter(match=f"{made.prefix}*"):
            made.client.delete(key)
        made.close()


def env_over(store: Any, **options: Any) -> pf.EmbeddedEnvironment:
    # Queue in memory: the test runs one environment after another over the same state.
    return pf.EmbeddedEnvironment(stepper, rounds, inc, store=store, transport="memory", **options)


def head_of(store: PartStore, key: str) -> WorkflowState:
    stored = store.get(key)
    assert stored is not None
    return CODEC.decode(WorkflowState, stored.value)


@pytest.mark.parametrize("batch_size", [1, 8])
def test_a_long_history_is_stored_as_a_small_head_and_chunks(store: Any, batch_size: int) -> None:
    env = env_over(store, batch_size=batch_size)
    try:
        assert env.client().start(stepper, 300, False, id="long").result(timeout=120) == 300
    finally:
        env.close()
    head = head_of(store, "long")
    assert head.history_chunks == (300 + 300) // CHUNK_ENTRIES  # commands and arrivals together
    assert len(head.commands) + len(head.arrivals) < CHUNK_ENTRIES
    whole = read_whole(store, CODEC, ["long"])["long"]
    assert len(whole.commands) == 300 and [c.position for c in whole.commands] == list(range(300))
    assert len(whole.arrivals) == 300


def test_a_new_process_reads_the_chunks_back_and_goes_on(store: Any) -> None:
    first = env_over(store)
    try:
        first.client().start(stepper, 200, True, id="resumed")
        first.run_until_idle()  # every step done: the run waits for its signal
        assert head_of(store, "resumed").history_chunks == (201 + 200) // CHUNK_ENTRIES
    finally:
        first.close()
    second = env_over(store)  # an empty cache: the state is read from its head and chunks
    try:
        client = second.client()
        client.signal("resumed", "more", 5)
        assert client.get_handle("resumed").result(timeout=120) == 205
    finally:
        second.close()


def test_continue_as_new_leaves_no_chunk_of_the_runs_before(store: Any) -> None:
    env = env_over(store)
    try:
        assert env.client().start(rounds, 3, 100, 0, id="rounds").result(timeout=120) == 300
    finally:
        env.close()
    head = head_of(store, "rounds")
    assert head.runs == 2 and head.history_epoch == 2
    parts = store.get_parts({"rounds": [f"{e}.{i}" for e in range(2) for i in range(10)]})["rounds"]
    assert parts == {}, f"chunks of earlier runs are left: {sorted(parts)}"
    assert len(read_whole(store, CODEC, ["rounds"])["rounds"].commands) == 100
