"""Flow-control leases in a real Redis: the limit holds across environments, leases run out, priorities."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest

import pulsarflow as pf
from pulsarflow.runtime.flow import FlowLimit
from pulsarflow.storage.flow_redis import RedisFlowLeases
from pulsarflow.topics import Topics


@pytest.fixture
def leases(redis_url: str) -> Iterator[RedisFlowLeases]:
    made = RedisFlowLeases.from_url(redis_url, Topics(app=f"flowtest-{uuid.uuid4().hex[:8]}"))
    yield made
    for key in made.client.scan_iter(made.prefix + "*"):
        made.client.delete(key)


def test_grants_up_to_the_limit_and_a_release_frees_a_slot(leases: RedisFlowLeases) -> None:
    limit = FlowLimit(max_concurrent=2, retry_ms=100)
    assert [leases.acquire("s", h, limit, 0).granted for h in "abc"] == [True, True, False]
    assert leases.acquire("s", "a", limit, 0).granted  # held already: granted again
    assert leases.held("s") == 2
    leases.release("s", "a", limit)
    assert leases.acquire("s", "c", limit, 0).granted


def test_a_lease_not_renewed_runs_out(leases: RedisFlowLeases) -> None:
    limit = FlowLimit(max_concurrent=1, lease_ms=1_000, retry_ms=10)
    assert leases.acquire("s", "dead", limit, 0).granted
    assert not leases.acquire("s", "next", limit, 0).granted
    for _ in range(100):  # polled, not timed: the lease runs out about a second from now
        if leases.acquire("s", "next", limit, 0).granted:
            break
        time.sleep(0.05)
    else:
        pytest.fail("the lease of a holder that never renewed did not run out")
    leases.renew("s", ["next"], limit)
    assert leases.held("s") == 1


def test_a_waiting_higher_priority_attempt_keeps_its_place(leases: RedisFlowLeases) -> None:
    one = FlowLimit(max_concurrent=1, retry_ms=100)
    assert leases.acquire("s", "running", one, 0).granted
    assert not leases.acquire("s", "urgent", one, 5).granted
    leases.release("s", "running", one)
    refused = leases.acquire("s", "later", one, 0)
    assert (refused.granted, refused.held_by) == (False, "concurrency")
    assert leases.acquire("s", "urgent", one, 5).granted


def test_the_rate_limit_refuses_until_the_next_start_is_due(leases: RedisFlowLeases) -> None:
    rate = FlowLimit(max_starts_per_second=2)
    assert leases.acquire("s", "a", rate, 0).granted
    refused = leases.acquire("s", "b", rate, 0)
    assert (refused.granted, refused.held_by) == (False, "rate")
    now_s, now_us = leases.client.time()
    assert 0 < refused.retry_at_ms - (now_s * 1000 + now_us // 1000) <= 500


class Running:
    def __init__(self) -> None:
        self.now = self.most = self.done = 0
        self.changed = threading.Condition()

    def run(self, total: int) -> None:
        with self.changed:
            self.now += 1
            self.most = max(self.most, self.now)
            self.changed.notify_all()
            # Three at once would break the limit; a working limit lets the pair go once the others wait or end.
            self.changed.wait_for(lambda: self.now >= 3 or self.done + self.now >= total, timeout=0.5)
            self.now -= 1
            self.done += 1
            self.changed.notify_all()


RUNNING = Running()
PER_ENV = 6


@pf.task(service="payments")
def pay(i: int) -> int:
    RUNNING.run(total=2 * PER_ENV)
    return i


@pf.workflow(name="flow-redis-fanout")
async def pay_all(ctx: pf.WorkflowContext, n: int) -> list[int]:
    return list(await ctx.all(*[ctx.task(pay, i) for i in range(n)]))


def test_the_limit_holds_across_two_environments_sharing_redis_leases(leases: RedisFlowLeases) -> None:
    flow = {"payments": FlowLimit(max_concurrent=2, retry_ms=50)}
    envs = [pf.EmbeddedEnvironment(pay_all, pay, executor_threads=3, flow=flow, flow_leases=leases)
            for _ in range(2)]
    results: list[list[int]] = []

    def run(env: pf.EmbeddedEnvironment) -> None:
        results.append(env.client().start(pay_all, PER_ENV).result(timeout=120))

    threads = [threading.Thread(target=run, args=(env,)) for env in envs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    for env in envs:
        env.close()
    assert results == [list(range(PER_ENV))] * 2
    assert RUNNING.most == 2  # six executor threads in all, never more than two attempts at once
