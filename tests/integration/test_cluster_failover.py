"""Failover on a two-broker cluster (deploy/pulsar-cluster.sh): kill -9 one broker mid-run.

The app runs with a partitioned workflow-engine topic whose partitions the two brokers
share, and its function instances on both brokers' workers. Broker 1 is killed with its
function instances (a lost machine). Its partitions move to broker 2, its instances are
rescheduled on broker 2's worker, and every workflow completes with outcomes that are
real executions, the ones recorded before the kill unchanged.

The cluster gives its workers no table service, so the app keeps state in a redis-server
of its own (``state: redis``). The test kills broker 1: start it again with
``deploy/pulsar-cluster.sh start-broker 1`` before running the test a second time.

When the cluster does not answer, the test skips; ``.ci/run`` starts the cluster for this
test only and runs it with ``PULSARFLOW_CLUSTER_TESTS=1``, under which (with CI=true) a
missing cluster fails it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.integration import fault_flows
from tests.integration.conftest import wait_for
from tests.integration.fault_checks import check_no_loss_and_stable_outcomes
from tests.integration.test_faults_redis import recorded_tokens

pytestmark = pytest.mark.pulsar
ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "pulsar-cluster.sh"
ADMIN_URLS = os.environ.get("PULSAR_CLUSTER_ADMIN_URLS", "http://127.0.0.1:8181,http://127.0.0.1:8182").split(",")
SERVICE_URL = os.environ.get("PULSAR_CLUSTER_SERVICE_URL", "pulsar://127.0.0.1:6751,127.0.0.1:6752")
BROKERS = {1: "127.0.0.1:8181", 2: "127.0.0.1:8182"}  # broker id = advertised address:web port
REDIS_PORT = int(os.environ.get("PULSARFLOW_CLUSTER_REDIS_PORT", "6397"))
MODULE = "tests.integration.fault_flows"
TIMEOUT = 240
WORKFLOWS, STEPS, STEP_SECONDS = 24, 6, 0.2
PARTITIONS = 4


def _absent(message: str) -> None:
    if os.environ.get("CI") == "true" and os.environ.get("PULSARFLOW_CLUSTER_TESTS") == "1":
        pytest.fail(message)
    pytest.skip(message)


def _cluster_up() -> bool:
    try:
        return all(requests.get(f"{url}/admin/v2/brokers/pulsarflow-cluster", timeout=3).status_code == 200
                   for url in ADMIN_URLS)
    except requests.RequestException:
        return False


@pytest.fixture(scope="module")
def survivor() -> Any:
    """An admin of broker 2, the one left running."""
    if not _cluster_up():
        _absent(f"no two-broker cluster at {', '.join(ADMIN_URLS)} (start one: deploy/pulsar-cluster.sh start)")
    from pulsarflow.deploy.admin import PulsarAdmin

    return PulsarAdmin(ADMIN_URLS[1])


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    if shutil.which("redis-server") is None:
        _absent("redis-server is not on PATH (apt-get install redis-server)")
    from bench.fault_load import RedisServer

    server = RedisServer(REDIS_PORT, tmp_path / "redis")
    try:
        yield server.start()
    finally:
        server.stop()


def owners(admin: Any, topic: str, partitions: int) -> dict[int, str]:
    """Which broker serves each partition (a lookup also assigns an unowned one)."""
    found = {}
    for i in range(partitions):
        path = f"{topic.split('://', 1)[1]}-partition-{i}"
        response = requests.get(f"{admin.url}/lookup/v2/topic/persistent/{path}", timeout=60)
        response.raise_for_status()
        found[i] = response.json()["httpUrl"].split("://", 1)[1].rstrip("/")
    return found


def owners_or_none(admin: Any, topic: str, partitions: int) -> dict[int, str] | None:
    """:func:`owners`, or None while a lookup fails (a partition moving between brokers)."""
    try:
        return owners(admin, topic, partitions)
    except requests.RequestException:
        return None


def spread(admin: Any, topic: str, partitions: int) -> dict[int, str]:
    """The partitions' owners, one bundle moved to the other broker if the load manager put all on one."""
    found = owners(admin, topic, partitions)
    if len(set(found.values())) > 1:
        return found
    other = next(b for b in BROKERS.values() if b not in found.values())
    partition = f"{topic.split('://', 1)[1]}-partition-0"
    bundle = requests.get(f"{admin.url}/lookup/v2/topic/persistent/{partition}/bundle", timeout=60).text.strip()
    namespace = "/".join(partition.split("/")[:2])
    requests.put(f"{admin.url}/admin/v2/namespaces/{namespace}/{bundle}/unload",
                 params={"destinationBroker": other}, timeout=60).raise_for_status()

    def both() -> dict[int, str] | None:
        now = owners_or_none(admin, topic, partitions)
        return now if now and len(set(now.values())) > 1 else None

    return wait_for(both, 60, f"a partition of {topic} on {other}")


def workers(admin: Any, manifest: Any) -> dict[str, list[str]]:
    """Each function's running instances, by the worker (its broker's web address) that runs them."""
    from pulsarflow.errors import BackendError

    t = manifest.topics
    out = {}
    for spec in manifest.functions:
        try:
            status = admin.function_status(t.tenant, t.namespace, spec.name)
        except BackendError:  # while the leader worker moves
            return {}
        out[spec.name] = sorted(i["status"]["workerId"].rsplit("-fw-", 1)[1].replace("-", ":")
                                for i in status.get("instances", []) if i["status"].get("running"))
    return out


def test_killing_a_broker_moves_its_topics_and_instances_and_loses_no_workflow(  # type: ignore[no-untyped-def]
        survivor, redis_url, tmp_path: Path) -> None:
    from pulsarflow.deploy import manifest as mf
    from pulsarflow.deploy import tool
    from pulsarflow.pulsar.worker import connect

    app = f"fail{uuid.uuid4().hex[:6]}"
    manifest = mf.parse({"app": app, "modules": [MODULE], "bundle_library": False, "state": "redis",
                         "redis_url": redis_url, "functions": [
                             {"name": f"{app}-workflow-engine", "engine": "workflow", "partitions": PARTITIONS,
                              "parallelism": PARTITIONS},
                             {"name": f"{app}-executor-faults", "engine": "executor", "service": fault_flows.SERVICE,
                              "partitions": 2, "parallelism": 2}]})
    journal = tmp_path / "journal.jsonl"
    t = manifest.topics
    try:
        tool.apply(survivor, manifest, tmp_path / "deploy")
        before = spread(survivor, t.workflow_engine, PARTITIONS)
        assert set(before.values()) == set(BROKERS.values()), f"the partitions are not spread: {before}"
        placed = wait_for(lambda: (w := workers(survivor, manifest)) and
                          all(len(v) == s.parallelism for v, s in zip(w.values(), manifest.functions)) and w,
                          TIMEOUT, "every instance running")
        assert {b for v in placed.values() for b in v} == set(BROKERS.values()), f"instances on one worker: {placed}"
        client = connect(SERVICE_URL, modules=[MODULE], topics=t)
        try:
            handles = [client.start(fault_flows.chain, str(journal), STEPS, STEP_SECONDS,
                                    id=f"failover-{i}-{uuid.uuid4().hex}") for i in range(WORKFLOWS)]
            wait_for(lambda: journal.exists() and len(journal.read_bytes().splitlines()) >= WORKFLOWS * 2, TIMEOUT,
                     "the workflows to make progress")
            recorded = recorded_tokens(redis_url, t, [h.id for h in handles])
            subprocess.run(["bash", str(SCRIPT), "kill-broker", "1"], check=True)
            results = {h.id: h.result(timeout=TIMEOUT) for h in handles}
        finally:
            client.close()
        after = wait_for(lambda: (o := owners_or_none(survivor, t.workflow_engine, PARTITIONS)) and
                         set(o.values()) == {BROKERS[2]} and o, TIMEOUT, "the partitions on broker 2")
        moved = wait_for(lambda: (w := workers(survivor, manifest)) and
                         all(len(v) == s.parallelism for v, s in zip(w.values(), manifest.functions)) and w,
                         TIMEOUT, "every instance running again")
    finally:
        for spec in manifest.functions:
            survivor.delete_function(t.tenant, t.namespace, spec.name)
    assert set(after.values()) == {BROKERS[2]}, f"partitions still on the killed broker: {after}"  # (waited for)
    assert {b for v in moved.values() for b in v} == {BROKERS[2]}, f"instances not rescheduled: {moved}"
    check_no_loss_and_stable_outcomes(recorded, results, journal, STEPS, "the broker kill")
