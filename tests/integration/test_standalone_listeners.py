"""The standalone started by deploy/pulsar-standalone.sh listens on 127.0.0.1 only, function
instances included, except the two listeners the standalone takes no bind address for."""

from __future__ import annotations

from functools import partial

import pytest

from tests.integration.conftest import ADMIN_URL, SERVICE_URL, instance_pids, wait_for
from tests.integration.listeners import BOOKIE_PORT, UNBINDABLE, listening, open_ports, port_of, standalone_pids

pytestmark = pytest.mark.pulsar


def test_every_configurable_listener_is_on_loopback(deployment) -> None:  # type: ignore[no-untyped-def]
    manifest, _, _ = deployment
    for spec in manifest.functions:
        wait_for(partial(instance_pids, spec.name), 90, f"an instance of {spec.name} to run")
    instances = [pid for spec in manifest.functions for pid in instance_pids(spec.name)]
    wait_for(lambda: len(listening(instances)) >= 2 * len(instances), 60, "each instance to serve gRPC and metrics")
    pids = standalone_pids()
    ports = listening(pids)
    assert {port_of(SERVICE_URL), port_of(ADMIN_URL), BOOKIE_PORT} <= set(ports), f"not all found: {ports}"
    unexpected = {port: address for port, address in open_ports(pids).items() if port not in UNBINDABLE}
    assert unexpected == {}, (f"listening beyond 127.0.0.1: {sorted(unexpected)}; was the standalone started "
                              "by this deploy/pulsar-standalone.sh?")
