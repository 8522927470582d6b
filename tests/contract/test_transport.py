"""Transport contracts (pulsarflow.transport.contract): the embedded queue's over the in-memory queue and
Redis, the Transport port's over the in-memory queue (over Pulsar: tests/integration/test_transport_pulsar.py)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from pulsarflow.clock import VirtualClock
from pulsarflow.transport.contract import CHECKS, PORT_CHECKS, Subject, Wire
from pulsarflow.transport.memory import InMemoryTransport
from pulsarflow.transport.queue import QueueTransport
from tests.redis.support import require_redis, unique_prefix


def memory_subject() -> tuple[Subject, list[str]]:
    return Subject(lambda clock, duplicate: InMemoryTransport(clock, duplicate=duplicate)), []


def redis_subject() -> tuple[Subject, list[str]]:
    from pulsarflow.transport.redis import RedisTransport

    url, prefixes = require_redis(), []

    def make(clock: VirtualClock, duplicate: bool) -> QueueTransport:
        prefixes.append(unique_prefix("queue-contract"))
        return RedisTransport.from_url(url, prefixes[-1], clock, duplicate=duplicate)

    return Subject(make), prefixes


@pytest.fixture(params=[pytest.param("memory"), pytest.param("redis", marks=pytest.mark.redis)])
def subject(request: pytest.FixtureRequest) -> Iterator[Subject]:
    made, prefixes = memory_subject() if request.param == "memory" else redis_subject()
    yield made
    made.cleanup()
    for queue, prefix in zip([q for q in made.made if hasattr(q, "client")], prefixes):
        for key in queue.client.scan_iter(match=prefix + "*"):
            queue.client.delete(key)


@pytest.mark.parametrize("check", sorted(CHECKS))
def test_contract(subject: Subject, check: str) -> None:
    CHECKS[check](subject)


def memory_wire() -> Wire:
    """The in-memory queue read back in arrival order; time moves (virtually) when nothing is due."""
    clock = VirtualClock()
    queue = InMemoryTransport(clock)
    names = itertools.count()

    def read(topic: str, count: int) -> list[tuple[str, bytes]]:
        out: list[tuple[str, bytes]] = []
        while len(out) < count:
            delivery = queue.poll()
            if delivery is None:
                due = queue.next_due_ms()
                if due is None:
                    break
                clock.sleep_until(due)
                continue
            queue.ack(delivery)
            if delivery.topic == topic:
                out.append((delivery.key, delivery.payload))
        return out

    return Wire(queue, lambda: f"persistent://public/default/wire-{next(names)}", read,
                lambda ms: clock.sleep_until(clock.now_ms() + ms), clock.now_ms)


@pytest.mark.parametrize("check", sorted(PORT_CHECKS))
def test_port_contract_in_memory(check: str) -> None:
    PORT_CHECKS[check](memory_wire())
