"""The embedded queue's contract (pulsarflow.transport.contract) over the in-memory queue and Redis."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pulsarflow.clock import VirtualClock
from pulsarflow.transport.contract import CHECKS, Subject
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
        for key in queue.client.scan_iter(match=prefix + "*"):  # type: ignore[attr-defined]
            queue.client.delete(key)  # type: ignore[attr-defined]


@pytest.mark.parametrize("check", sorted(CHECKS))
def test_contract(subject: Subject, check: str) -> None:
    CHECKS[check](subject)
