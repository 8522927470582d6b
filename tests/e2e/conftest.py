"""The end-to-end environment: every test runs once normally, once with each message delivered
twice, and once with the engines handling messages in batches."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pulsarflow.testing import TestEnvironment
from tests.e2e import edge_flows, flows

DELIVERIES = {"once": (False, 1), "twice": (True, 1), "batched": (False, 50)}


@pytest.fixture(params=list(DELIVERIES))
def env(request: pytest.FixtureRequest) -> Iterator[TestEnvironment]:
    flows.CALLS.clear()
    flows.FLAKY.clear()
    edge_flows.SWITCH.clear()
    duplicate, batch_size = DELIVERIES[request.param]
    environment = TestEnvironment(*flows.ALL, *edge_flows.ALL, duplicate_messages=duplicate,
                                  batch_size=batch_size)
    yield environment
    environment.close()
