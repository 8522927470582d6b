"""The lease backends on a fake clock: limits hold under any sequence of starts, ends, renewals, crashes."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from pulsarflow.clock import VirtualClock
from pulsarflow.runtime.flow import FlowLimit
from pulsarflow.runtime.flow_counters import RING, CounterFlowLeases
from pulsarflow.runtime.flow_leases import InMemoryFlowLeases

LIMIT = FlowLimit(max_concurrent=3, lease_ms=1_000, retry_ms=100)


class DictCounters:
    def __init__(self) -> None:
        self.values: dict[str, int] = {}

    def incr(self, key: str, amount: int) -> None:
        self.values[key] = self.values.get(key, 0) + amount

    def get(self, key: str) -> int:
        return self.values.get(key, 0)


def test_memory_grants_up_to_the_limit_then_says_when_to_come_back() -> None:
    clock = VirtualClock()
    leases = InMemoryFlowLeases(clock)
    assert [leases.acquire("s", f"h{i}", LIMIT, 0).granted for i in range(4)] == [True, True, True, False]
    refused = leases.acquire("s", "h9", LIMIT, 0)
    assert (refused.held_by, refused.retry_at_ms) == ("concurrency", clock.now_ms() + 100)
    assert leases.acquire("s", "h1", LIMIT, 0).granted  # a holder is granted again (a duplicate delivery)
    leases.release("s", "h1", LIMIT)
    assert leases.acquire("s", "h9", LIMIT, 0).granted
    assert leases.acquire("other", "h1", LIMIT, 0).granted  # services are apart


def test_memory_leases_not_renewed_run_out() -> None:
    clock = VirtualClock()
    leases = InMemoryFlowLeases(clock)
    for i in range(3):
        leases.acquire("s", f"h{i}", LIMIT, 0)
    clock.advance(0.6)
    leases.renew("s", ["h0"], LIMIT)  # h1 and h2 belong to an executor that died
    clock.advance(0.6)
    assert leases.held("s") == 1
    assert leases.acquire("s", "new", LIMIT, 0).granted


def test_memory_a_waiting_higher_priority_attempt_keeps_its_place() -> None:
    clock = VirtualClock()
    leases = InMemoryFlowLeases(clock)
    one = FlowLimit(max_concurrent=1, retry_ms=100)
    assert leases.acquire("s", "running", one, 0).granted
    assert not leases.acquire("s", "urgent", one, 5).granted
    leases.release("s", "running", one)
    assert not leases.acquire("s", "later", one, 0).granted  # the slot is kept for the urgent one
    assert leases.acquire("s", "urgent", one, 5).granted
    leases.release("s", "urgent", one)
    assert leases.acquire("s", "later", one, 0).granted


def test_memory_a_waiting_attempt_that_never_comes_back_stops_holding_others() -> None:
    clock = VirtualClock()
    leases = InMemoryFlowLeases(clock)
    one = FlowLimit(max_concurrent=1, retry_ms=100)
    leases.acquire("s", "running", one, 0)
    leases.acquire("s", "urgent", one, 5)  # refused; then cancelled, never seen again
    leases.release("s", "running", one)
    clock.advance(3)  # past its retry time and the grace
    assert leases.acquire("s", "later", one, 0).granted


def test_memory_rate_spaces_starts() -> None:
    clock = VirtualClock()
    leases = InMemoryFlowLeases(clock)
    rate = FlowLimit(max_starts_per_second=4)
    assert leases.acquire("s", "a", rate, 0).granted
    refused = leases.acquire("s", "b", rate, 0)
    assert (refused.granted, refused.held_by, refused.retry_at_ms) == (False, "rate", clock.now_ms() + 250)
    clock.advance(0.25)
    assert leases.acquire("s", "b", rate, 0).granted


ops = st.lists(st.tuples(st.sampled_from(["start", "end", "tick", "crash"]), st.integers(0, 9),
                         st.integers(0, 3), st.integers(0, 400)), max_size=120)


@settings(max_examples=150, deadline=None)
@given(ops, st.integers(1, 4), st.one_of(st.none(), st.integers(1, 20)))
def test_memory_never_more_leases_than_the_limit_and_starts_are_spaced(steps: list[tuple[str, int, int, int]],
                                                                        most: int, rate: int | None) -> None:
    clock = VirtualClock()
    leases = InMemoryFlowLeases(clock)
    limit = FlowLimit(max_concurrent=most, max_starts_per_second=rate, lease_ms=1_000, retry_ms=50)
    running: set[str] = set()
    starts: list[int] = []
    for op, who, priority, wait in steps:
        holder = f"h{who}"
        # a holder whose lease is still on (it crashed and came back) is granted again, as a
        # duplicate delivery is: that is not another start
        again = holder in leases._expired("s", clock.now_ms()).leases
        if op == "start" and holder not in running and leases.acquire("s", holder, limit, priority).granted:
            running.add(holder)
            if not again:
                starts.append(clock.now_ms())
        elif op == "end" and holder in running:
            running.discard(holder)
            leases.release("s", holder, limit)
        elif op == "crash":
            running.discard(holder)  # never released: its lease must run out by itself
        clock.advance(wait / 1000)
        leases.renew("s", sorted(running), limit)
        assert leases.held("s") <= most
        assert running <= set(leases._services["s"].leases)  # a renewed lease never runs out
    if rate is not None:
        assert all(b - a >= 1000 / rate - 1e-9 for a, b in pairwise(starts))


def test_counters_admit_up_to_the_limit_across_instances() -> None:
    clock, counters = VirtualClock(), DictCounters()
    one, two = CounterFlowLeases(counters, clock, clearer=True), CounterFlowLeases(counters, clock)
    granted = [one.acquire("s", "a", LIMIT, 0).granted, two.acquire("s", "b", LIMIT, 0).granted,
               one.acquire("s", "c", LIMIT, 0).granted, two.acquire("s", "d", LIMIT, 0).granted]
    assert granted == [True, True, True, False]
    two.release("s", "b", LIMIT)
    assert two.acquire("s", "d", LIMIT, 0).granted


def test_counters_a_crashed_instance_frees_its_slots_within_two_epochs() -> None:
    clock, counters = VirtualClock(), DictCounters()
    alive, dead = CounterFlowLeases(counters, clock, clearer=True), CounterFlowLeases(counters, clock)
    for h in ("a", "b", "c"):
        assert dead.acquire("s", h, LIMIT, 0).granted
    assert not alive.acquire("s", "x", LIMIT, 0).granted
    for _ in range(8):  # the dead instance renews nothing any more; two epochs of 1 s pass
        clock.advance(0.25)
        alive.renew("s", [], LIMIT)
    assert alive.acquire("s", "x", LIMIT, 0).granted


def test_counters_rate_is_a_window_per_second() -> None:
    clock, counters = VirtualClock(1_000_000), DictCounters()
    leases = CounterFlowLeases(counters, clock)
    rate = FlowLimit(max_starts_per_second=2)
    assert [leases.acquire("s", h, rate, 0).granted for h in "abc"] == [True, True, False]
    refused = leases.acquire("s", "d", rate, 0)
    assert (refused.held_by, refused.retry_at_ms) == ("rate", 1_001_000)
    clock.advance(1)
    assert leases.acquire("s", "d", rate, 0).granted


@settings(max_examples=100, deadline=None)
@given(ops, st.integers(1, 4))
def test_counters_never_more_running_than_the_limit_over_many_epochs(steps: list[tuple[str, int, int, int]],
                                                                      most: int) -> None:
    clock, counters = VirtualClock(), DictCounters()
    instances = [CounterFlowLeases(counters, clock, clearer=True), CounterFlowLeases(counters, clock)]
    limit = FlowLimit(max_concurrent=most, lease_ms=1_000)
    running: dict[str, int] = {}  # holder -> instance running it
    for op, who, where, wait in steps:
        holder, inst = f"h{who}", instances[where % 2]
        if op == "start" and holder not in running and inst.acquire("s", holder, limit, 0).granted:
            running[holder] = where % 2
        elif op == "end" and holder in running:
            instances[running.pop(holder)].release("s", holder, limit)
        elif op == "crash" and holder in running:
            del running[holder]  # its instance forgets it: as if that executor died
            instances[where % 2]._epochs.pop(("s", holder), None)
            instances[where % 2 - 1]._epochs.pop(("s", holder), None)
        assert len(running) <= most
        for _ in range(wait // 200 + 1):  # renewals at least every quarter epoch
            clock.advance(min(wait, 200) / 1000)
            for i, instance in enumerate(instances):
                instance.renew("s", [h for h, at in running.items() if at == i], limit)
    assert all(abs(v) <= 10 * RING for v in counters.values.values())  # counters stay bounded
    for _ in range(12):  # everything ends: after two epochs the whole limit is free again
        clock.advance(0.25)
        for holder in list(running):
            instances[running.pop(holder)].release("s", holder, limit)
        for instance in instances:
            instance.renew("s", [], limit)
    assert all(CounterFlowLeases(counters, clock).acquire("s", f"n{i}", limit, 0).granted for i in range(most))
