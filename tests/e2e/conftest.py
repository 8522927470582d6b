"""The end-to-end environment: every test runs once normally, once with each message delivered
twice, and once with the engines handling messages in batches."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pulsarflow.testing import TestEnvironment
from tests.e2e import edge_flows, flows

DELIVERIES = {"once": (False, 1), "twice": (True, 1), "batched": (False, 50)}
# Every end-to-end test runs with live workflows kept between messages (the default) and with
# every message replaying the history (cache off): both must decide the same.
CACHES = {"cached": None, "replayed": 0}


@pytest.fixture(params=[f"{d}-{c}" for d in DELIVERIES for c in CACHES])
def env(request: pytest.FixtureRequest) -> Iterator[TestEnvironment]:
    flows.CALLS.clear()
    flows.FLAKY.clear()
    edge_flows.SWITCH.clear()
    delivery, cache = request.param.split("-")
    duplicate, batch_size = DELIVERIES[delivery]
    environment = TestEnvironment(*flows.ALL, *edge_flows.ALL, duplicate_messages=duplicate,
                                  batch_size=batch_size, workflow_cache=CACHES[cache])
    yield environment
    environment.close()
