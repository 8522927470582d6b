"""The embedded runtime over Redis: state outlives the process, finished state expires."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from pulsarflow.embedded import EmbeddedEnvironment
from pulsarflow.storage.redis import RedisStateStore
from tests.e2e import flows
from tests.redis.support import unique_prefix

pytestmark = pytest.mark.redis
ROOT = Path(__file__).resolve().parents[2]

FIRST_PROCESS = """
import sys
from pulsarflow.embedded import EmbeddedEnvironment
from pulsarflow.storage.redis import RedisStateStore
from tests.e2e import flows

url, prefix, workflow_id = sys.argv[1:]
env = EmbeddedEnvironment(flows.two_signals, store=RedisStateStore.from_url(url, prefix=prefix), fail_fast=True)
client = env.client()
client.start(flows.two_signals, id=workflow_id)
client.signal(workflow_id, "item", "from the first process")
print("waiting for a second signal")
"""


def test_a_new_process_finishes_a_workflow_the_first_one_started(redis_url: str) -> None:
    prefix, workflow_id = unique_prefix("restart"), "two-signals-1"
    first = subprocess.run([sys.executable, "-c", FIRST_PROCESS, redis_url, prefix, workflow_id], cwd=ROOT,
                           capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert "waiting for a second signal" in first.stdout
    store = RedisStateStore.from_url(redis_url, prefix=prefix)
    env = EmbeddedEnvironment(flows.two_signals, store=store, fail_fast=True)
    client = env.client()
    client.signal(workflow_id, "item", "from the second")
    result = client.get_handle(workflow_id, flows.two_signals).result(timeout=30)
    assert result == ["from the first process", "from the second"]
    store.delete(workflow_id)


def test_finished_workflows_expire_after_the_retention_running_ones_stay(redis_url: str) -> None:
    retention_ms = 1000
    store = RedisStateStore.from_url(redis_url, prefix=unique_prefix("retention"), retention_ms=retention_ms)
    env = EmbeddedEnvironment(flows.sequence, flows.add, flows.approval, store=store, fail_fast=True)
    client = env.client()
    assert client.start(flows.sequence, 3, id="done").result(timeout=30) == 3
    client.start(flows.approval, 600.0, id="waiting")
    while env.step():
        pass
    assert 0 < store.client.pttl(store.prefix + "done") <= retention_ms
    assert store.client.pttl(store.prefix + "waiting") == -1  # no expiry while it runs
    time.sleep(retention_ms / 1000 + 0.2)
    assert store.get("done") is None
    assert store.get("waiting") is not None
    store.delete("waiting")
