"""History chunks (runtime/history.py): any history, any chunk size, round trips through every layout step.

The states are built the way the engines change them: a run appends commands and arrivals;
a new run (a retry cutting into the history, a continue-as-new emptying it) raises the
generation. Each state is saved as the handler saves it (head and new chunks from the
state it was decided from) and read back whole.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pulsarflow.codec import Codec
from pulsarflow.errors import BackendError, DecodeError
from pulsarflow.messages import Arrival, Command, WorkflowState
from pulsarflow.pulsar.function_state import FunctionStateStore
from pulsarflow.runtime.history import HistoryChunks, Layout, read_whole
from pulsarflow.storage import PartStore, is_part_key
from pulsarflow.storage.memory import InMemoryStateStore

CODEC = Codec()
KEY = "wf/1"

# One change: ("step", commands added, arrivals added) or ("run", commands kept, arrivals kept).
changes = st.lists(st.one_of(
    st.tuples(st.just("step"), st.integers(0, 5), st.integers(0, 5)),
    st.tuples(st.just("run"), st.integers(0, 40), st.integers(0, 40)),
), max_size=40)


def grow(state: WorkflowState, change: tuple[str, int, int]) -> WorkflowState:
    kind, a, b = change
    if kind == "run":
        return replace(state, commands=state.commands[:a], arrivals=state.arrivals[:b],
                       generation=state.generation + 1)
    n, m = len(state.commands), len(state.arrivals)
    return replace(state, commands=state.commands + tuple(Command(n + i, "TASK", f"t{n + i}") for i in range(a)),
                   arrivals=state.arrivals + tuple(Arrival(m + i, m + i, value=b"r%d" % i) for i in range(b)))


def history(state: WorkflowState) -> tuple[object, ...]:
    return state.commands, state.arrivals, state.generation


class DictContext:
    """The Functions Context's get_state/put_state over a dict; ``fail_on`` makes writes of one key fail."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.fail_on: str | None = None

    def get_state(self, key: str) -> bytes | None:
        return self.data.get(key)

    def put_state(self, key: str, value: str) -> None:
        if key == self.fail_on:
            raise RuntimeError("the table service went away")
        self.data[key] = value.encode()


def save(chunks: HistoryChunks, store: PartStore, state: WorkflowState, before: WorkflowState | None,
         version: int) -> tuple[WorkflowState, int]:
    encoded = chunks.encode(state, before)
    return encoded.state, store.put_parts(KEY, encoded.head, version, encoded.parts)


def read(chunks: HistoryChunks, store: PartStore) -> WorkflowState:
    stored = store.get(KEY)
    assert stored is not None
    return chunks.read(store, KEY, stored)


@settings(max_examples=150, deadline=None)
@given(changes=changes, entries=st.integers(1, 9), function_state=st.booleans())
def test_any_history_round_trips_through_heads_and_chunks(changes: list[tuple[str, int, int]], entries: int,
                                                          function_state: bool) -> None:
    store: PartStore = FunctionStateStore(DictContext()) if function_state else InMemoryStateStore()
    chunks = HistoryChunks(CODEC, entries)
    state = WorkflowState(KEY, "flow", b"[]", "RUNNING", 0)
    before, version = None, 0
    for change in changes:
        state = grow(state, change)
        before, version = save(chunks, store, state, before, version)
        back = read(chunks, store)
        assert history(back) == history(state)
        head = CODEC.decode(WorkflowState, store.get(KEY).value)  # type: ignore[union-attr]
        tail = len(head.commands) + len(head.arrivals)
        assert tail < entries, "the head keeps less than one chunk of history"
        assert Layout.of(head) == Layout.of(back) == Layout.of(before)


@settings(max_examples=100, deadline=None)
@given(steps=st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4)), min_size=1, max_size=30),
       entries=st.integers(1, 6), crash_at=st.integers(0, 29))
def test_a_crash_between_chunks_and_head_leaves_the_previous_state(steps: list[tuple[int, int]], entries: int,
                                                                  crash_at: int) -> None:
    """Function state writes chunks before the head: a head write that fails leaves the old state readable."""
    context = DictContext()
    store = FunctionStateStore(context)
    chunks = HistoryChunks(CODEC, entries)
    state = WorkflowState(KEY, "flow", b"[]", "RUNNING", 0)
    before, version = None, 0
    for i, (a, b) in enumerate(steps):
        decided = grow(state, ("step", a, b))
        if i == crash_at % len(steps):
            context.fail_on = KEY  # the chunks land, the head does not
            with pytest.raises(BackendError):
                save(chunks, store, decided, before, version)
            context.fail_on = None
            if before is not None:
                assert history(read(chunks, store)) == history(state)
            decided = replace(decided, arrivals=tuple(replace(x, at_ms=x.at_ms + 1) for x in decided.arrivals))
        before, version = save(chunks, store, decided, before, version)  # the redelivery decides again
        state = decided
        assert history(read(chunks, store)) == history(state)


def test_a_new_run_drops_the_chunks_of_the_old_one() -> None:
    store = InMemoryStateStore()
    chunks = HistoryChunks(CODEC, 4)
    state = grow(WorkflowState(KEY, "flow", b"[]", "RUNNING", 0), ("step", 10, 10))
    before, version = save(chunks, store, state, None, 0)
    assert store.part_count(KEY) == 5 and before.history_chunks == 5
    fresh = replace(state, commands=(), arrivals=(), generation=1, runs=1)  # continue-as-new
    before, version = save(chunks, store, fresh, before, version)
    assert store.part_count(KEY) == 0 and (before.history_epoch, before.history_chunks) == (1, 0)
    again = grow(before, ("step", 4, 0))
    before, version = save(chunks, store, again, before, version)
    assert store.part_count(KEY) == 1 and history(read(chunks, store)) == history(again)
    store.delete(KEY)
    assert store.part_count(KEY) == 0


def test_a_retry_cutting_into_the_tail_keeps_the_sealed_chunks() -> None:
    store = InMemoryStateStore()
    chunks = HistoryChunks(CODEC, 4)
    state = grow(WorkflowState(KEY, "flow", b"[]", "RUNNING", 0), ("step", 5, 5))
    before, version = save(chunks, store, state, None, 0)
    retried = grow(state, ("run", 5, 4))
    encoded = chunks.encode(retried, before)
    assert encoded.parts.drop == () and encoded.state.history_epoch == 0
    store.put_parts(KEY, encoded.head, version, encoded.parts)
    assert history(read(chunks, store)) == history(retried)


def test_a_whole_state_of_an_earlier_release_is_read_as_is_and_chunked_by_its_next_write() -> None:
    store = InMemoryStateStore()
    chunks = HistoryChunks(CODEC, 8)
    old = grow(WorkflowState(KEY, "flow", b"[]", "RUNNING", 0), ("step", 30, 30))
    store.put(KEY, CODEC.encode_as("0.3.0", old), 0)
    back = read(chunks, store)
    assert history(back) == history(old) and back.history_chunks == 0
    newer = grow(back, ("step", 1, 1))
    save(chunks, store, newer, back, 1)
    head = CODEC.decode(WorkflowState, store.get(KEY).value)  # type: ignore[union-attr]
    assert head.history_chunks == 7 and len(head.commands) + len(head.arrivals) < 8
    assert history(read_whole(store, CODEC, [KEY])[KEY]) == history(newer)


def test_a_missing_chunk_is_an_unreadable_state() -> None:
    store = InMemoryStateStore()
    chunks = HistoryChunks(CODEC, 2)
    state = grow(WorkflowState(KEY, "flow", b"[]", "RUNNING", 0), ("step", 3, 3))
    save(chunks, store, state, None, 0)
    store._parts[KEY].pop("0.1")
    with pytest.raises(DecodeError, match="chunk 0.1 of 3"):
        read(chunks, store)


def test_keys_shaped_like_a_chunk_key_are_reserved() -> None:
    assert is_part_key("order\x1fh0.3") and is_part_key("a\x1fh12.40\x001\x000")
    assert not any(is_part_key(k) for k in ("order", "order\x1fh", "order\x1fhx.1", "h0.3", "a\x1fh1.2b"))


def test_clients_and_engines_refuse_an_id_shaped_like_a_chunk_key() -> None:
    import pulsarflow as pf
    from pulsarflow.errors import LimitExceededError
    from pulsarflow.runtime.limits import check_id

    with pytest.raises(LimitExceededError, match="reserves: use another id"):
        check_id("workflow id", "order\x1fh0.3")

    @pf.workflow
    async def noop(ctx: pf.WorkflowContext) -> None:
        return None

    with pytest.raises(LimitExceededError, match="history chunk"):
        pf.EmbeddedEnvironment(noop).client().start(noop, id="order\x1fh1.2")
