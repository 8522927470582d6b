"""deploy/pulsar-standalone.sh keeps the data across stop and start; reset wipes it.

It stops and starts the shared standalone, so it runs on its own, after everything else:
``.ci/run`` runs it last with ``PULSARFLOW_RESTART_TESTS=1``; without that it is skipped.
Kept across the restart: deployed functions, a workflow's function state (a completed one
reads as completed, a waiting one takes its signal and completes), a message waiting on a
durable subscription. After ``reset`` none of it is there.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.e2e import flows
from tests.integration.conftest import SERVICE_URL, connected, deployed_app

pytestmark = pytest.mark.pulsar
SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "pulsar-standalone.sh"
MODULE = "tests.e2e.flows"
TIMEOUT = 180

if os.environ.get("PULSARFLOW_RESTART_TESTS") != "1":
    pytest.skip("restarts the shared standalone: .ci/run runs it last (PULSARFLOW_RESTART_TESTS=1)",
                allow_module_level=True)


def standalone(action: str) -> None:
    done = subprocess.run(["bash", str(SCRIPT), action], capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, f"{action} failed:\n{done.stdout}\n{done.stderr}"


def durable_message(topic: str, subscription: str, payload: bytes | None) -> bytes | None:
    """Publish ``payload`` (when given) behind a durable subscription; else receive what waits there."""
    import pulsar

    client = pulsar.Client(SERVICE_URL)
    try:
        consumer = client.subscribe(topic, subscription, initial_position=pulsar.InitialPosition.Earliest)
        if payload is not None:
            client.create_producer(topic).send(payload)
            return None
        try:
            message = consumer.receive(timeout_millis=20_000)
        except pulsar.Timeout:
            return None
        consumer.acknowledge(message)
        return bytes(message.data())
    finally:
        client.close()


def test_stop_and_start_keep_the_data_and_reset_wipes_it(pulsar_admin, tmp_path) -> None:  # type: ignore[no-untyped-def]
    functions = [{"name": "{app}-workflow-engine", "engine": "workflow"},
                 {"name": "{app}-executor-default", "engine": "executor", "service": "default"}]
    topic = f"persistent://public/default/restart-{uuid.uuid4().hex[:8]}"
    with deployed_app(pulsar_admin, tmp_path, [MODULE], functions, prefix="restart") as app:
        with connected(app.topics, (MODULE,)) as client:
            done = client.start(flows.sequence, 3, id="restart-done")
            assert done.result(timeout=TIMEOUT) == 3
            waiting = client.start(flows.approval, 3600.0, id="restart-waiting")
            time.sleep(2)  # its start is handled and saved
        durable_message(topic, "kept", b"still here")

        standalone("stop")
        standalone("start")

        with connected(app.topics, (MODULE,)) as client:
            assert client.status("restart-done", timeout=TIMEOUT).status == "COMPLETED"
            client.signal("restart-waiting", "decision", "yes", timeout=TIMEOUT)
            assert client.get_handle("restart-waiting").result(timeout=TIMEOUT) == "got yes"
            assert client.start(flows.sequence, 2).result(timeout=TIMEOUT) == 1
        assert waiting.id == "restart-waiting"
        assert durable_message(topic, "kept", None) == b"still here"
        durable_message(topic, "kept", b"gone after reset")

        standalone("reset")
        standalone("start")
        assert pulsar_admin.function(app.topics.tenant, app.topics.namespace, app.functions[0].name) is None
        assert durable_message(topic, "kept", None) is None
