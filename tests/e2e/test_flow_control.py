"""Flow control end to end on the embedded runtime: the limits hold, nothing is lost, priorities order.

The concurrency tests run task attempts on executor threads and count, inside the task,
how many run at once. Each attempt waits until three run at once, or until the limiter has
held another attempt back since it started, or until no other attempt is left: so a limit
that let a third attempt run would be seen, and a working one is reached, with no timing
assumption.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from itertools import pairwise

import pytest

import pulsarflow as pf
from pulsarflow.clock import SystemClock, VirtualClock
from pulsarflow.errors import DefinitionError
from pulsarflow.runtime.flow import FlowLimit
from pulsarflow.runtime.flow_leases import Grant, InMemoryFlowLeases


class Running:
    """How many attempts run at once, and the most ever seen."""

    def __init__(self) -> None:
        self.now = self.most = self.done = self.refused = 0
        self.attempts: list[int] = []
        self.changed = threading.Condition()

    def held_back(self) -> None:
        with self.changed:
            self.refused += 1
            self.changed.notify_all()

    def run(self, total: int) -> None:
        with self.changed:
            self.now += 1
            self.most = max(self.most, self.now)
            self.attempts.append(pf.task_info().attempt)
            seen = self.refused
            self.changed.notify_all()
            # The timeout only keeps a broken runtime from hanging the suite; nothing asserts on time.
            self.changed.wait_for(lambda: self.now >= 3 or self.refused > seen or self.done + self.now >= total,
                                  timeout=10)
            self.now -= 1
            self.done += 1
            self.changed.notify_all()


RUNNING = Running()
TOTAL = 8


@pf.task(service="payments")
def charge(i: int) -> int:
    RUNNING.run(total=TOTAL)
    return i


@pf.workflow(name="flow-fanout")
async def fanout(ctx: pf.WorkflowContext, n: int) -> list[int]:
    return list(await ctx.all(*[ctx.task(charge, i) for i in range(n)]))


@pytest.fixture(autouse=True)
def fresh() -> Iterator[None]:
    global RUNNING
    RUNNING = Running()
    yield


def run_fanout(env: pf.EmbeddedEnvironment) -> list[int]:
    try:
        return env.client().start(fanout, TOTAL).result(timeout=60)
    finally:
        env.close()


class Noting(InMemoryFlowLeases):
    """In-memory leases that tell RUNNING when they hold an attempt back."""

    def acquire(self, service: str, holder: str, limit: FlowLimit, priority: int) -> Grant:
        grant = super().acquire(service, holder, limit, priority)
        if not grant.granted:
            RUNNING.held_back()
        return grant


def test_the_concurrency_limit_holds_with_more_executor_threads_than_slots() -> None:
    env = pf.EmbeddedEnvironment(fanout, charge, executor_threads=4, fail_fast=True,
                                 flow_leases=Noting(SystemClock()), flow={"payments": FlowLimit(max_concurrent=2)})
    assert run_fanout(env) == list(range(TOTAL))
    assert RUNNING.most == 2  # reached, never passed
    assert RUNNING.refused > 0
    assert RUNNING.attempts == [1] * TOTAL  # held-back attempts were not counted as attempts
    assert env.dead_letters == []


def test_without_a_limit_the_same_load_runs_more_at_once() -> None:
    env = pf.EmbeddedEnvironment(fanout, charge, executor_threads=4, fail_fast=True)
    assert run_fanout(env) == list(range(TOTAL))
    assert RUNNING.most >= 3  # so the test above would see a broken limit


def test_a_limit_on_another_service_does_not_hold_this_one_back() -> None:
    env = pf.EmbeddedEnvironment(fanout, charge, executor_threads=4, fail_fast=True,
                                 flow={"shipping": FlowLimit(max_concurrent=1)})
    assert run_fanout(env) == list(range(TOTAL))
    assert RUNNING.most >= 3


class Recording(InMemoryFlowLeases):
    """In-memory leases that note every grant (service time, holder)."""

    def __init__(self, clock: VirtualClock) -> None:
        super().__init__(clock)
        self.grants: list[tuple[int, str]] = []
        self.refusals = 0

    def acquire(self, service: str, holder: str, limit: FlowLimit, priority: int) -> Grant:
        grant = super().acquire(service, holder, limit, priority)
        if grant.granted:
            self.grants.append((self.clock.now_ms(), holder))
        else:
            self.refusals += 1
        return grant


@pf.task(service="pricing")
def quote(label: str) -> str:
    return label


@pf.task(service="pricing", priority=10)
def urgent_quote(label: str) -> str:
    return label


@pf.workflow(name="flow-quotes")
async def quotes(ctx: pf.WorkflowContext, n: int) -> list[str]:
    low = [ctx.task(quote, f"low{i}") for i in range(n)]
    high = [ctx.task(urgent_quote, f"high{i}") for i in range(n)]
    boosted = ctx.task(quote, "boosted", priority=20)
    return list(await ctx.all(*low, *high, boosted))


def test_the_rate_limit_spaces_starts_and_loses_nothing() -> None:
    clock = VirtualClock()
    leases = Recording(clock)
    env = pf.EmbeddedEnvironment(quotes, quote, urgent_quote, clock=clock, fail_fast=True, flow_leases=leases,
                                 flow={"pricing": FlowLimit(max_starts_per_second=20)})
    result = env.client().start(quotes, 3).result(timeout=60)
    env.close()
    assert sorted(result) == sorted(["low0", "low1", "low2", "high0", "high1", "high2", "boosted"])
    times = [at for at, _ in leases.grants]
    assert len(times) == 7 and leases.refusals > 0
    assert all(b - a >= 50 for a, b in pairwise(times))  # 20 per second: 50 ms apart on the limiter's clock


def test_higher_priorities_start_first_when_attempts_wait() -> None:
    clock = VirtualClock()
    leases = Recording(clock)
    env = pf.EmbeddedEnvironment(quotes, quote, urgent_quote, clock=clock, fail_fast=True, flow_leases=leases,
                                 flow={"pricing": FlowLimit(max_starts_per_second=1)})
    env.client().start(quotes, 3).result(timeout=60)
    env.close()
    order = [holder.split("@")[0].rsplit("/", 1)[1] for _, holder in leases.grants]
    # Positions: low 0-2, high 3-5, boosted 6. The first low one starts before anything waits.
    assert order[0] == "0"
    assert order[1] == "6"  # priority 20, from ctx.task(priority=)
    assert sorted(order[2:5]) == ["3", "4", "5"]  # priority 10, from @task(priority=)
    assert sorted(order[5:]) == ["1", "2"]


@pytest.mark.parametrize("setting, value", [("max_concurrent", 0), ("max_concurrent", -1),
                                            ("max_concurrent", 2.5), ("max_starts_per_second", 0),
                                            ("max_starts_per_second", "many"), ("lease_ms", 0)])
def test_a_bad_limit_is_refused_naming_the_setting(setting: str, value: object) -> None:
    with pytest.raises(DefinitionError, match=f"FlowLimit.{setting} must be a whole number of at least"):
        pf.EmbeddedEnvironment(fanout, charge, flow={"payments": FlowLimit(**{setting: value})})  # type: ignore[arg-type]


def test_bad_flow_and_thread_settings_are_refused() -> None:
    with pytest.raises(DefinitionError, match="executor_threads must be a whole number of at least 1"):
        pf.EmbeddedEnvironment(fanout, charge, executor_threads=0)
    with pytest.raises(DefinitionError, match="flow must map service names to FlowLimit"):
        pf.EmbeddedEnvironment(fanout, charge, flow={"payments": 3})  # type: ignore[dict-item]
    with pytest.raises(DefinitionError, match="priority must be a whole number"):
        pf.task(service="x", priority=1.5)(lambda: None)  # type: ignore[call-overload]
