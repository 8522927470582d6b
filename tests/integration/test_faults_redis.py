"""Faults under ``state: redis`` and poison under load, on a real standalone.

- **kill -9 of Redis mid-run**: the app keeps its workflow state in a redis-server this
  module starts itself (its own port and append-only file, never the shared Redis), which
  is killed once the workflows are under way and started again on the same data. Every
  workflow completes with one token per step, each the token of an execution the journal
  holds, and no workflow's recorded step changes its outcome.
- **poison mixed into a load**: one message of each kind (undecodable bytes, a
  10,000-character workflow id, 5 MB of garbage, a reply topic the app does not own) is
  published between the starts of a load into a batched engine; each is dead-lettered
  after one attempt and every workflow of the load completes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from bench.fault_load import RedisServer
from bench.faults import poisons
from pulsarflow.storage.redis import RedisStateStore, key_prefix
from tests.integration import fault_checks, fault_flows
from tests.integration.conftest import SERVICE_URL, connected, deployed_app, wait_for
from tests.integration.fault_checks import check_no_loss_and_stable_outcomes

pytestmark = pytest.mark.pulsar
MODULE = "tests.integration.fault_flows"
TIMEOUT = 120
WORKFLOWS, STEPS, STEP_SECONDS = 10, 4, 0.1
REDIS_PORT = int(os.environ.get("PULSARFLOW_FAULTS_REDIS_PORT", "6393"))


@pytest.fixture
def own_redis(tmp_path: Path):  # type: ignore[no-untyped-def]
    if shutil.which("redis-server") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server is not on PATH (apt-get install redis-server)")
        pytest.skip("redis-server is not on PATH")
    server = RedisServer(REDIS_PORT, tmp_path / "redis")
    url = server.start()
    try:
        yield server, url
    finally:
        server.stop()


def recorded_tokens(url: str, topics: Any, workflow_ids: list[str]) -> dict[str, dict[int, str]]:
    """The recorded outcomes, read from the engine's state in Redis."""
    import redis

    return fault_checks.recorded_tokens(RedisStateStore(redis.Redis.from_url(url), prefix=key_prefix(topics)),
                                        workflow_ids)


def test_killing_redis_mid_run_loses_nothing_and_keeps_recorded_outcomes(  # type: ignore[no-untyped-def]
        pulsar_admin, own_redis, tmp_path: Path) -> None:
    from pulsarflow.deploy import manifest as mf
    from pulsarflow.deploy import tool

    server, url = own_redis
    app = f"faultr{uuid.uuid4().hex[:6]}"
    manifest = mf.parse({"app": app, "modules": [MODULE], "bundle_library": False, "state": "redis",
                         "redis_url": url, "functions": [
                             {"name": f"{app}-workflow-engine", "engine": "workflow", "batch": 20},
                             {"name": f"{app}-executor-faults", "engine": "executor",
                              "service": fault_flows.SERVICE}]})
    journal = tmp_path / "journal.jsonl"
    try:
        tool.apply(pulsar_admin, manifest, tmp_path / "deploy")
        with connected(manifest.topics, (MODULE,)) as client:
            handles = [client.start(fault_flows.chain, str(journal), STEPS, STEP_SECONDS,
                                    id=f"redis-{i}-{uuid.uuid4().hex}") for i in range(WORKFLOWS)]
            wait_for(lambda: journal.exists() and len(journal.read_bytes().splitlines()) >= WORKFLOWS * 2, TIMEOUT,
                     "the workflows to make progress")
            recorded = recorded_tokens(url, manifest.topics, [h.id for h in handles])
            server.kill()
            time.sleep(1.0)
            server.start()
            results = {h.id: h.result(timeout=TIMEOUT) for h in handles}
    finally:
        for spec in manifest.functions:
            pulsar_admin.delete_function(manifest.topics.tenant, manifest.topics.namespace, spec.name)
    check_no_loss_and_stable_outcomes(recorded, results, journal, STEPS, "the Redis kill")


def test_poison_mixed_into_a_load_is_dead_lettered_at_once_and_the_load_completes(  # type: ignore[no-untyped-def]
        pulsar_admin, tmp_path: Path) -> None:
    import pulsar

    from bench.faults import _schema_option
    from pulsarflow.pulsar.deadletters import PulsarDeadLetters

    functions = [{"name": "{app}-workflow-engine", "engine": "workflow", "batch": 20},
                 {"name": "{app}-executor-faults", "engine": "executor", "service": fault_flows.SERVICE,
                  "batch": 20}]
    journal = tmp_path / "journal.jsonl"
    with deployed_app(pulsar_admin, tmp_path / "deploy", [MODULE], functions, prefix="faultp") as manifest:
        topics = manifest.topics
        poison = poisons(topics, journal, 1)
        raw = pulsar.Client(SERVICE_URL)
        try:
            with connected(topics, (MODULE,)) as client:
                producer = raw.create_producer(topics.workflow_engine, batching_enabled=False, **_schema_option())
                handles = []
                for i in range(WORKFLOWS):
                    handles.append(client.start(fault_flows.chain, str(journal), 2, 0.02,
                                                id=f"load-{i}-{uuid.uuid4().hex}"))
                    if i < len(poison):
                        producer.send(poison[i][1], partition_key=f"poison-{i}")
                results = [h.result(timeout=TIMEOUT) for h in handles]
            kinds = {hashlib.sha256(payload).hexdigest(): kind for kind, payload in poison}

            def letters() -> list[Any] | None:
                reader = PulsarDeadLetters(raw, topics.dead_letters)
                try:
                    found = [letter for _, letter in reader.letters() if letter.sha256 in kinds]
                finally:
                    reader.close()
                return found if len(found) >= len(poison) else None

            found = wait_for(letters, 60, "a dead letter for every poison")
        finally:
            raw.close()
    assert [len(tokens) for tokens in results] == [2] * WORKFLOWS
    assert sorted(kinds[letter.sha256] for letter in found) == sorted(kind for kind, _ in poison)
    assert {letter.attempts for letter in found} == {1}
    assert {letter.kind for letter in found} <= {"undecodable", "refused"}
