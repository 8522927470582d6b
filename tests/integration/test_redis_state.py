"""Engines deployed as Pulsar Functions with ``state: redis``: workflows run, their state lives in Redis.

The Redis URL reaches the workflow engine as a function secret (``redis_url_secret``; the
standalone's default secrets provider hands the secret's path over as its value).
"""

from __future__ import annotations

import os
import time
import uuid

import pytest

from pulsarflow.codec import Codec
from pulsarflow.messages import WorkflowState
from pulsarflow.storage.redis import RedisStateStore, key_prefix
from tests.e2e import flows
from tests.integration.conftest import connected
from tests.redis.support import require_redis

pytestmark = [pytest.mark.pulsar, pytest.mark.redis]
TIMEOUT = 90
RETENTION_MS = 3_600_000


@pytest.fixture(scope="module")
def redis_deployment(pulsar_admin, tmp_path_factory):  # type: ignore[no-untyped-def]
    """The engines under a fresh app name with state: redis; functions and Redis keys removed afterwards."""
    from pulsarflow.deploy import manifest as mf
    from pulsarflow.deploy import tool

    redis_url = require_redis()
    app = f"itr{uuid.uuid4().hex[:6]}"
    manifest = mf.parse({
        "app": app, "modules": ["tests.e2e.flows"], "state": "redis", "redis_url_secret": redis_url,
        "retention_ms": RETENTION_MS, "bundle_library": os.environ.get("PULSARFLOW_BUNDLE", "0") == "1",
        "functions": [
            {"name": f"{app}-workflow-engine", "engine": "workflow"},
            {"name": f"{app}-executor-default", "engine": "executor", "service": "default"},
        ],
    })
    store = RedisStateStore.from_url(redis_url, prefix=key_prefix(manifest.topics))
    try:
        tool.apply(pulsar_admin, manifest, tmp_path_factory.mktemp("deploy-redis"))
        yield manifest, store
    finally:
        for spec in manifest.functions:
            pulsar_admin.delete_function(manifest.topics.tenant, manifest.topics.namespace, spec.name)
        for key in store.client.scan_iter(match=store.prefix + "*"):
            store.client.delete(key)


@pytest.fixture(scope="module")
def client(redis_deployment):  # type: ignore[no-untyped-def]
    manifest, _ = redis_deployment
    with connected(manifest.topics) as connection:
        yield connection


def test_workflow_state_lives_in_redis_and_expires_after_the_retention(client, redis_deployment,  # type: ignore[no-untyped-def]
                                                                        pulsar_admin) -> None:
    manifest, store = redis_deployment
    workflow_id = f"redis-seq-{time.time_ns()}"
    assert client.start(flows.sequence, 3, id=workflow_id).result(timeout=TIMEOUT) == 3
    # The answer is published before the state is saved (publish, then save): wait for the save.
    deadline = time.monotonic() + 10
    while (stored := store.get(workflow_id)) is None or stored.version < 4:
        assert time.monotonic() < deadline, f"state of {workflow_id} not saved: {stored}"
        time.sleep(0.05)
    assert stored.version == 4  # start, then one write per completed task
    state = Codec().decode(WorkflowState, stored.value)
    assert (state.workflow_id, state.status, len(state.commands)) == (workflow_id, "COMPLETED", 3)
    assert 0 < store.client.pttl(store.prefix + workflow_id) <= RETENTION_MS
    t = manifest.topics
    assert pulsar_admin.function_state(t.tenant, t.namespace, manifest.functions[0].name, workflow_id) is None


def test_parallel_tasks_and_a_signal(client, redis_deployment) -> None:  # type: ignore[no-untyped-def]
    _, store = redis_deployment
    assert client.start(flows.fan, 5).result(timeout=TIMEOUT) == [2 * i for i in range(5)]
    handle = client.start(flows.approval, 60.0, id=f"redis-approval-{time.time_ns()}")
    time.sleep(1.0)
    assert store.client.pttl(store.prefix + handle.id) == -1  # running: no expiry
    client.signal(handle.id, "decision", "yes", timeout=TIMEOUT)
    assert handle.result(timeout=TIMEOUT) == "got yes"
