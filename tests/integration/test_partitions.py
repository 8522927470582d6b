"""Partitioned engine topics (``partitions:`` in functions.yaml) on a real standalone.

The deploy tool creates the partitioned topics before the functions; the registered
schemas hold for every partition; the Python client's producer routes a keyed message by
the hash of its key (so one workflow id always reaches the same partition); each
partition is consumed Key_Shared; timers and retries (delayed delivery) fire on
partitions; and growing a partition count with workflows in flight loses none.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e import flows
from tests.integration.conftest import ADMIN_URL, SERVICE_URL, connected, wait_for

pytestmark = pytest.mark.pulsar
TIMEOUT = 180
MODULES = ["tests.e2e.flows"]


def engines(workflow_partitions: int, tag_partitions: int = 2) -> list[dict[str, Any]]:
    return [
        {"name": "{app}-workflow-engine", "engine": "workflow", "partitions": workflow_partitions,
         "parallelism": workflow_partitions},
        {"name": "{app}-tag-engine", "engine": "tag", "partitions": tag_partitions, "parallelism": tag_partitions},
        # One instance each: flows.flaky counts its attempts in the process that runs it.
        {"name": "{app}-executor-default", "engine": "executor", "service": "default"},
        {"name": "{app}-executor-geometry", "engine": "executor", "service": "geometry"},
    ]


@contextmanager
def partitioned_app(admin: Any, out: Path, functions: list[dict[str, Any]], **settings: Any) -> Iterator[Any]:
    from pulsarflow.deploy import manifest as mf
    from pulsarflow.deploy import tool

    app = f"part{uuid.uuid4().hex[:6]}"
    raw = {"app": app, "modules": MODULES, "bundle_library": False, **settings,
           "functions": [{**f, "name": f["name"].format(app=app)} for f in functions]}
    manifest = mf.parse(raw)
    try:
        tool.apply(admin, manifest, out)
        yield manifest, raw
    finally:
        for spec in manifest.functions:
            admin.delete_function(manifest.topics.tenant, manifest.topics.namespace, spec.name)


def per_partition(topic: str) -> dict[str, Any]:
    path = topic.split("://", 1)[1]
    response = requests.get(f"{ADMIN_URL}/admin/v2/persistent/{path}/partitioned-stats",
                            params={"perPartition": "true"}, timeout=30)
    response.raise_for_status()
    return dict(response.json()["partitions"])


@pytest.fixture(scope="module")
def app(pulsar_admin, tmp_path_factory) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    with partitioned_app(pulsar_admin, tmp_path_factory.mktemp("partitions"), engines(3)) as (manifest, _):
        yield manifest


@pytest.fixture(scope="module")
def client(app):  # type: ignore[no-untyped-def]
    with connected(app.topics) as connection:
        yield connection


def test_the_deploy_creates_the_partitioned_topics_with_their_schemas(app, pulsar_admin) -> None:  # type: ignore[no-untyped-def]
    t = app.topics
    assert pulsar_admin.partitions(t.workflow_engine) == 3
    assert pulsar_admin.partitions(t.tag_engine) == 2
    assert pulsar_admin.partitions(t.executor("default")) == 0  # partitions: 1 stays a plain topic
    registered = pulsar_admin.schema(t.workflow_engine)
    assert registered is not None and registered["type"] == "AVRO"
    # One schema for the topic, seen from each of its partitions.
    assert pulsar_admin.schema(f"{t.workflow_engine}-partition-2")["version"] == registered["version"]
    assert pulsar_admin.schema_validation(t.tenant, t.namespace) is True


def test_a_keyed_message_always_reaches_the_same_partition(pulsar_admin) -> None:  # type: ignore[no-untyped-def]
    import pulsar

    topic = f"persistent://public/default/part-routing-{uuid.uuid4().hex[:6]}"
    pulsar_admin.create_partitioned_topic(topic, 4)
    client = pulsar.Client(SERVICE_URL)
    try:
        readers = [client.create_reader(f"{topic}-partition-{i}", pulsar.MessageId.earliest) for i in range(4)]
        # The transport's producer settings: no batching, the default routing mode.
        producer = client.create_producer(topic, batching_enabled=False)
        keys = [f"workflow-{i}" for i in range(100)]
        for key in keys + keys:
            producer.send(key.encode(), partition_key=key)
        found: dict[str, set[int]] = {}
        for i, reader in enumerate(readers):
            while reader.has_message_available():
                message = reader.read_next(timeout_millis=10_000)
                assert message.data() == message.partition_key().encode()
                found.setdefault(message.partition_key(), set()).add(i)
        assert sorted(found) == sorted(keys)
        assert {k: len(p) for k, p in found.items() if len(p) != 1} == {}  # each key on one partition only
        assert {p for parts in found.values() for p in parts} == {0, 1, 2, 3}  # and the keys spread
    finally:
        client.close()
        requests.delete(f"{ADMIN_URL}/admin/v2/persistent/{topic.split('://', 1)[1]}/partitions",
                        params={"force": "true"}, timeout=30)


def test_workflows_timers_and_retries_run_on_partitions(app, client) -> None:  # type: ignore[no-untyped-def]
    handles = [client.start(flows.sequence, 4) for _ in range(30)]
    fan = client.start(flows.fan, 6)
    child = client.start(flows.parent, 1)
    timed = [client.start(flows.nap, 1.5) for _ in range(6)]
    key = f"flaky-{uuid.uuid4().hex[:6]}"
    retried = client.start(flows.retrying, key, 2)
    assert [h.result(timeout=TIMEOUT) for h in handles] == [6] * 30
    assert fan.result(timeout=TIMEOUT) == [2 * i for i in range(6)]
    assert child.result(timeout=TIMEOUT) == {"a": 0, "b": 1, "c": 3}
    assert all(h.result(timeout=TIMEOUT) >= 1.5 for h in timed)  # the timer fired, not before its time
    assert retried.result(timeout=TIMEOUT) == f"{key} ok after 3"  # two delayed retries


def test_every_partition_is_consumed_key_shared(app, client) -> None:  # type: ignore[no-untyped-def]
    handles = [client.start(flows.sequence, 2) for _ in range(30)]
    assert [h.result(timeout=TIMEOUT) for h in handles] == [1] * 30
    subscription = app.topics.subscription("workflow")
    stats = per_partition(app.topics.workflow_engine)
    assert len(stats) == 3
    for name, partition in stats.items():
        sub = partition["subscriptions"][subscription]
        assert sub["type"] == "Key_Shared", name
        assert len(sub["consumers"]) == 3, name  # every instance reads every partition
        assert partition["msgInCounter"] > 0, name  # the workflow ids spread over all of them


def test_growing_the_partitions_with_workflows_in_flight_loses_none(pulsar_admin, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Growth moves keys to other partitions: safe with state: redis, whose versioned writes catch the overlap."""
    from pulsarflow.deploy import manifest as mf
    from pulsarflow.deploy import tool

    url = os.environ.get("REDIS_URL")
    if not url:
        if os.environ.get("CI") == "true":
            pytest.fail("REDIS_URL is not set: .ci/run starts redis-server and sets it")
        pytest.skip("REDIS_URL is not set")
    deployed = partitioned_app(pulsar_admin, tmp_path / "v1", engines(2, 1), state="redis", redis_url=url)
    with deployed as (manifest, raw), connected(manifest.topics) as client:
        before = [client.start(flows.sequence, 6) for _ in range(40)]
        timers = [client.start(flows.nap, 3.0) for _ in range(10)]
        grown = mf.parse({**raw, "functions": [
            {**f, "partitions": 4, "parallelism": 4} if f["engine"] == "workflow" else f
            for f in raw["functions"]]})
        report = tool.apply(pulsar_admin, grown, tmp_path / "v2")
        assert f"{manifest.topics.workflow_engine}: grow from 2 to 4 partitions" in report
        after = [client.start(flows.sequence, 6) for _ in range(40)]
        assert [h.result(timeout=TIMEOUT) for h in before + after] == [15] * 80
        assert all(h.result(timeout=TIMEOUT) >= 3.0 for h in timers)
        assert pulsar_admin.partitions(manifest.topics.workflow_engine) == 4
        stats = wait_for(lambda: (s := per_partition(manifest.topics.workflow_engine)) and
                         all(p["msgInCounter"] > 0 for p in s.values()) and s, 120,
                         "traffic on the new partitions")
        assert len(stats) == 4
        shrunk = mf.parse(raw)  # back to 2 partitions: refused, nothing changed
        with pytest.raises(Exception, match="Pulsar cannot remove partitions"):
            tool.apply(pulsar_admin, shrunk, tmp_path / "v3")
        assert pulsar_admin.partitions(manifest.topics.workflow_engine) == 4
        status = pulsar_admin.function_status(manifest.topics.tenant, manifest.topics.namespace,
                                              grown.functions[0].name)
        assert status["numInstances"] == 4
