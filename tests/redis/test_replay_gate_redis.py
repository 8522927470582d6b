"""The replay gate over ``state: redis``: the engine's keys are scanned, the running ones replayed."""

from __future__ import annotations

import uuid

import pytest

from pulsarflow.deploy import gate, live
from pulsarflow.deploy import manifest as mf
from pulsarflow.interpreter.registry import Registry
from pulsarflow.storage.redis import RedisStateStore, key_prefix
from pulsarflow.testing import TestEnvironment
from tests.e2e import flows
from tests.e2e.versions import v1, v2, v3

pytestmark = pytest.mark.redis


def test_running_workflows_in_redis_are_found_and_replayed(redis_url: str) -> None:
    app = f"gate{uuid.uuid4().hex[:6]}"
    manifest = mf.parse({"app": app, "modules": ["tests.e2e.versions.v3"], "state": "redis",
                         "redis_url_secret": "kept-in-a-secret",
                         "functions": [{"name": f"{app}-workflow-engine", "engine": "workflow"}]})
    store = RedisStateStore.from_url(redis_url, prefix=key_prefix(manifest.topics, "workflow"))
    try:
        env = TestEnvironment(v1.shipping, flows.add, store=store)
        client = env.client()
        client.start("shipping", id="done/1")
        env.run_ready()
        client.signal("done/1", "go")
        assert client.get_handle("done/1").result() == "old path"
        for n in range(3):
            client.start("shipping", id=f"wait {n}")
        env.run_ready()
        with live.live_source(manifest, None, live.Connection(redis_url=redis_url)) as source:  # type: ignore[arg-type]
            broken = gate.check_source(source, Registry([v3.shipping, flows.add]))
            sample = gate.check_source(source, Registry([v2.shipping, flows.add]), sample=2)
        assert sorted(r.workflow_id for r in broken.diverging) == ["wait 0", "wait 1", "wait 2"]
        assert broken.runs.candidates == 4 and not broken.ok
        assert sample.ok and len(sample.results) == 2
    finally:
        for key in store.client.scan_iter(match=store.prefix + "*"):
            store.client.delete(key)
        store.close()
