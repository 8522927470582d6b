"""The Transport port's contract (pulsarflow.transport.contract.PORT_CHECKS) over the Pulsar transport
on a real standalone: flushed messages arrive unchanged, each key keeps its send order, and a
delayed message (``deliver_at``) waits for its time while others pass."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from pulsarflow.transport.contract import PORT_CHECKS, Wire
from tests.integration.conftest import SERVICE_URL

pytestmark = pytest.mark.pulsar


@pytest.fixture
def wire(pulsar_admin: Any) -> Iterator[Wire]:  # pulsar_admin: fails under CI without a standalone
    import pulsar

    from pulsarflow.pulsar.transport import PulsarTransport

    client = pulsar.Client(SERVICE_URL, operation_timeout_seconds=15)
    transport = PulsarTransport(client)
    consumers: dict[str, Any] = {}

    def topic() -> str:
        name = f"persistent://public/default/wire-{uuid.uuid4().hex[:10]}"
        # Shared: delayed delivery only applies to shared subscriptions (as the engines' are).
        consumers[name] = client.subscribe(name, "wire", consumer_type=pulsar.ConsumerType.Shared)
        return name

    def read(name: str, count: int) -> list[tuple[str, bytes]]:
        out: list[tuple[str, bytes]] = []
        while len(out) < count:
            try:
                message = consumers[name].receive(timeout_millis=15_000)
            except pulsar.Timeout:
                break
            consumers[name].acknowledge(message)
            out.append((message.partition_key(), bytes(message.data())))
        return out

    yield Wire(transport, topic, read, lambda ms: time.sleep(ms / 1000), lambda: int(time.time() * 1000))
    transport.close()
    client.close()


@pytest.mark.parametrize("check", sorted(PORT_CHECKS))
def test_port_contract_on_pulsar(wire: Wire, check: str) -> None:
    PORT_CHECKS[check](wire)
