"""Flow control on real Pulsar Functions: one slot, two executor instances, never two attempts at once.

The executor Function runs with parallelism 2 and ``max_concurrent: 1`` on its own function
state (the counter leases). Each task notes in Redis how many run at once and which process
ran it: both instances run tasks, and never together. Deployed in the namespace
``public/flowctl`` under a fresh app name, and removed afterwards.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import pulsarflow as pf

pytestmark = pytest.mark.pulsar
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/7")
TASKS = 10
# Counts one more attempt running, and keeps the most seen.
_ENTER = """
local n = redis.call('INCR', KEYS[1])
if n > tonumber(redis.call('GET', KEYS[2]) or '0') then redis.call('SET', KEYS[2], n) end
redis.call('SADD', KEYS[3], ARGV[1])
redis.call('EXPIRE', KEYS[1], 600) redis.call('EXPIRE', KEYS[2], 600) redis.call('EXPIRE', KEYS[3], 600)
return n
"""


def _redis(url: str = REDIS_URL) -> Any:
    import redis

    return redis.Redis.from_url(url)


@pf.task(service="flowctl")
def hold(url: str, key: str) -> int:
    """(The Redis URL comes with the call: the Function instances do not share the test's environment.)"""
    client = _redis(url)
    client.eval(_ENTER, 3, f"{key}:now", f"{key}:most", f"{key}:pids", os.getpid())
    time.sleep(0.3)
    client.decr(f"{key}:now")
    return os.getpid()


@pf.workflow(name="flowctl-fanout")
async def hold_all(ctx: pf.WorkflowContext, url: str, key: str, n: int) -> int:
    return len(await ctx.all(*[ctx.task(hold, url, key) for _ in range(n)]))


@pytest.fixture(scope="module")
def app(pulsar_admin, tmp_path_factory) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    from pulsarflow.deploy import manifest as mf
    from pulsarflow.deploy import tool
    from tests.integration.conftest import ADMIN_URL, CONNECTION

    try:
        _redis().ping()
    except Exception as exc:
        (pytest.fail if os.environ.get("CI") == "true" else pytest.skip)(f"no Redis at {REDIS_URL}: {exc}")
    session = CONNECTION.http_session()
    answer = session.put(f"{ADMIN_URL}/admin/v2/namespaces/public/flowctl", json={}, timeout=30)
    assert answer.status_code in (204, 409), answer.text
    name = f"fc{uuid.uuid4().hex[:6]}"
    manifest = mf.parse({"app": name, "namespace": "flowctl", "bundle_library": False,
                         "modules": ["tests.integration.test_flow_control_pulsar"], "functions": [
                             {"name": f"{name}-workflow-engine", "engine": "workflow"},
                             {"name": f"{name}-tag-engine", "engine": "tag"},
                             {"name": f"{name}-executor", "engine": "executor", "service": "flowctl",
                              "parallelism": 2, "max_concurrent": 1, "flow_retry_ms": 100}]})
    out: Path = tmp_path_factory.mktemp("flowctl")
    try:
        tool.apply(pulsar_admin, manifest, out)
        yield manifest
    finally:
        for spec in manifest.functions:
            pulsar_admin.delete_function("public", "flowctl", spec.name)
        session.close()


def test_one_slot_holds_across_two_executor_instances(app, pulsar_admin) -> None:  # type: ignore[no-untyped-def]
    from tests.integration.conftest import connected
    from tests.integration.test_faults import running_status

    running_status(pulsar_admin, app.topics, app.functions[2].name, 2)
    key = f"flowctl-test:{uuid.uuid4().hex[:8]}"
    with connected(app.topics, modules=("tests.integration.test_flow_control_pulsar",)) as client:
        handles = [client.start(hold_all, REDIS_URL, key, TASKS // 2) for _ in range(2)]
        assert [h.result(timeout=180) for h in handles] == [TASKS // 2] * 2
    redis = _redis()
    assert int(redis.get(f"{key}:most")) == 1  # never two attempts at once
    assert redis.scard(f"{key}:pids") == 2  # though both instances ran attempts
    for suffix in ("now", "most", "pids"):
        redis.delete(f"{key}:{suffix}")
