"""The StateStore contract (pulsarflow.storage.contract) over every backend pytest can reach.

Pulsar function state runs the very same checks inside a deployed function:
tests/integration/test_function_state_contract.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pulsarflow.clock import VirtualClock
from pulsarflow.storage.contract import CHECKS, NotApplicable, Subject
from pulsarflow.storage.memory import InMemoryStateStore
from tests.redis.support import require_redis, unique_prefix

RETENTION_MS = 300


def memory_subject() -> Subject:
    clock = VirtualClock()
    store = InMemoryStateStore(retention_ms=RETENTION_MS, clock=clock)
    return Subject(store, let_time_pass=lambda ms: clock.advance(ms / 1000))


def redis_subject() -> Subject:
    from pulsarflow.storage.redis import RedisStateStore

    store = RedisStateStore.from_url(require_redis(), prefix=unique_prefix("contract"), retention_ms=RETENTION_MS)
    return Subject(store)


BACKENDS = {"memory": memory_subject, "redis": redis_subject}


@pytest.fixture(params=[pytest.param("memory"), pytest.param("redis", marks=pytest.mark.redis)])
def subject(request: pytest.FixtureRequest) -> Iterator[Subject]:
    made = BACKENDS[request.param]()
    yield made
    made.cleanup()


@pytest.mark.parametrize("check", sorted(CHECKS))
def test_contract(subject: Subject, check: str) -> None:
    try:
        CHECKS[check](subject)
    except NotApplicable as exc:
        pytest.fail(f"{type(subject.store).__name__} should offer what {check} needs: {exc}")


def test_a_store_without_retention_keeps_finished_values() -> None:
    clock = VirtualClock()
    subject = Subject(InMemoryStateStore(clock=clock), let_time_pass=lambda ms: clock.advance(ms / 1000))
    subject.store.put("k", b"done", 0, finished=True)
    clock.advance(10 * 365 * 86400)
    assert subject.store.get("k") is not None
    with pytest.raises(NotApplicable, match="no retention"):
        CHECKS["finished_values_expire"](subject)
