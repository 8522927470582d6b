"""The standalone started by deploy/pulsar-standalone.sh listens on 127.0.0.1 only, function
instances included, except the two listeners the standalone takes no bind address for."""

from __future__ import annotations

import pytest

from tests.integration.conftest import instance_pids, wait_for
from tests.integration.listeners import UNBINDABLE, listening, open_ports, standalone_pids

pytestmark = pytest.mark.pulsar


def test_every_configurable_listener_is_on_loopback(deployment) -> None:  # type: ignore[no-untyped-def]
    manifest, _, _ = deployment
    wait_for(lambda: instance_pids(manifest.functions[0].name), 60, "a function instance to run")
    pids = standalone_pids()
    ports = listening(pids)
    assert {6650, 8080, 3181} <= set(ports), f"the standalone's listeners were not found: {ports}"
    assert len(ports) > 5, "the function instances' gRPC and metrics ports were not found"
    unexpected = {port: address for port, address in open_ports(pids).items() if port not in UNBINDABLE}
    assert unexpected == {}, (f"listening beyond 127.0.0.1: {sorted(unexpected)}; was the standalone started "
                              "by this deploy/pulsar-standalone.sh?")
