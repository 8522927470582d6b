"""A backend outage on a real standalone: the engines (Pulsar Functions, ``state: redis``) retry
within seconds once Redis is back, instead of the Functions runtime's 60 s redelivery, and
nothing is dead-lettered. Both paths: one message at a time (``batch: 1``) and batched."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import flows
from tests.integration.conftest import connected
from tests.integration.test_poison_pulsar import dead_letters
from tests.redis.support import PrivateRedis

pytestmark = [pytest.mark.pulsar, pytest.mark.redis]
MODULE = "tests.e2e.flows"
OUTAGE_S = 8
RECOVERY_BOUND_S = 10


@pytest.fixture(scope="module", params=[1, 20], ids=["one-by-one", "batched"])
def outage_app(request, pulsar_admin, tmp_path_factory) -> Iterator[tuple[Any, PrivateRedis]]:  # type: ignore[no-untyped-def]
    redis = PrivateRedis(Path(tmp_path_factory.mktemp("redis")))
    redis.start()
    functions = [{"name": "{app}-workflow-engine", "engine": "workflow", "batch": request.param},
                 {"name": "{app}-executor-default", "engine": "executor", "service": "default"}]
    from pulsarflow.deploy import manifest as mf
    from pulsarflow.deploy import tool

    app = f"outage{uuid.uuid4().hex[:6]}"
    manifest = mf.parse({"app": app, "modules": [MODULE], "state": "redis", "redis_url_secret": redis.url,
                         "functions": [{**f, "name": f["name"].format(app=app)} for f in functions]})
    try:
        tool.apply(pulsar_admin, manifest, tmp_path_factory.mktemp("outage"))
        yield manifest, redis
    finally:
        for spec in manifest.functions:
            pulsar_admin.delete_function(manifest.topics.tenant, manifest.topics.namespace, spec.name)
        redis.stop()


def test_answers_resume_within_seconds_after_redis_comes_back(outage_app) -> None:  # type: ignore[no-untyped-def]
    manifest, redis = outage_app
    with connected(manifest.topics, (MODULE,)) as client:
        assert client.start(flows.sequence, 2).result(timeout=120) == 1  # engines up, Redis in use
        redis.stop()
        handles = [client.start(flows.sequence, 3) for _ in range(5)]
        time.sleep(OUTAGE_S)
        redis.start()
        back = time.monotonic()
        results = [h.result(timeout=90) for h in handles]
        recovered_s = time.monotonic() - back
    assert results == [3] * 5
    assert dead_letters(manifest.topics, 0, 0) == []  # an outage is never the message's fault
    print(json.dumps({"case": "redis-outage", "batch": manifest.functions[0].config.get("batch", 1),
                      "outage_s": OUTAGE_S, "answers_resumed_after_s": round(recovered_s, 2)}))
    assert recovered_s < RECOVERY_BOUND_S, f"answers came {recovered_s:.1f}s after Redis was back"
