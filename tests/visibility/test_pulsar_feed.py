"""Events over a real Pulsar standalone: published through the handler's transport, fed into stores, replayed.

Marker ``pulsar``: skipped locally without a standalone, fails under CI=true.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pulsarflow.codec import Codec
from pulsarflow.events.exposition import MetricsServer
from pulsarflow.events.metrics import Metrics
from pulsarflow.events.recorder import EventRecorder
from pulsarflow.events.topic import TopicEventSink
from pulsarflow.pulsar.events_feed import PulsarEventFeed
from pulsarflow.pulsar.function import build_handler
from pulsarflow.testing import TestEnvironment
from pulsarflow.topics import Topics
from pulsarflow.visibility.memory import InMemoryVisibilityStore
from pulsarflow.visibility.sqlite import SqliteVisibilityStore
from tests.e2e import flows
from tests.integration.conftest import ADMIN_URL, SERVICE_URL, _pulsar_up


def test_functions_publish_events_unless_told_not_to() -> None:
    config = {"engine": "workflow", "modules": "tests.e2e.flows", "app": "vis"}
    handler = build_handler(config, object(), None)
    assert isinstance(handler.observer, EventRecorder) and isinstance(handler.observer.sink, TopicEventSink)
    assert handler.observer.sink.topic == "persistent://public/default/vis-events"
    assert build_handler({**config, "events": "off"}, object(), None).observer is None
    metrics_only = build_handler({**config, "events": "off"}, object(), None, Metrics())
    assert isinstance(metrics_only.observer, EventRecorder) and metrics_only.observer.sink is None
    with pytest.raises(Exception, match="userConfig.events must be 'topic' or 'off'"):
        build_handler({**config, "events": "kafka"}, object(), None)


def test_metrics_are_served_for_prometheus() -> None:
    import urllib.request

    metrics = Metrics()
    env = TestEnvironment(*flows.ALL, metrics=metrics)
    env.client().start(flows.sequence, 2, id="m").result()
    server = MetricsServer(metrics, host="127.0.0.1", port=0).start()
    try:
        with urllib.request.urlopen(server.url, timeout=5) as response:
            text = response.read().decode()
            assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    finally:
        server.stop()
    assert 'pulsarflow_tasks_total{outcome="completed",task="add"}' not in text  # labels keep their order
    assert 'pulsarflow_tasks_total{task="add",outcome="completed"} 2' in text


@pytest.fixture(scope="module")
def pulsar_client() -> Iterator[Any]:
    if not _pulsar_up():
        message = f"no Pulsar admin at {ADMIN_URL} (start one: deploy/pulsar-standalone.sh start)"
        if __import__("os").environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    import pulsar

    client = pulsar.Client(SERVICE_URL)
    yield client
    client.close()


@pytest.mark.pulsar
def test_events_reach_the_topic_and_feed_stores(pulsar_client: Any, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    from pulsarflow.cli import main as pulsarflow_main
    from pulsarflow.pulsar.transport import PulsarTransport

    topics = Topics(app=f"vis{uuid.uuid4().hex[:6]}")
    transport = PulsarTransport(pulsar_client)
    sink = TopicEventSink(transport, Codec(), topics.events)
    flows.FLAKY.clear()
    env = TestEnvironment(*flows.ALL, events=sink)
    env.client().start(flows.retrying, "pulsar", 1, id="p-1").result()
    env.client().start(flows.sequence, 2, id="p-2").result()
    transport.flush()  # the handler flushes its own transport; this one is the test's

    store = SqliteVisibilityStore(tmp_path / "v.db")
    feed = PulsarEventFeed(pulsar_client, topics.events, store, f"{topics.app}-visibility")
    assert feed.drain(idle_ms=1500) > 10
    feed.close()
    summary = store.get("p-1")
    assert summary is not None and summary.status == "COMPLETED" and summary.workflow_name == "retrying"
    kinds = [e.type for e in store.history("p-1")]
    assert kinds.count("TaskStarted") == 2 and "TaskRetried" in kinds
    assert len(set(e.event_id for e in store.history("p-1"))) == len(kinds)  # duplicates dropped

    rebuilt = InMemoryVisibilityStore()
    PulsarEventFeed(pulsar_client, topics.events, rebuilt, "unused").replay()
    assert [e.event_id for e in rebuilt.history("p-2")] == [e.event_id for e in store.history("p-2")]

    argv = ["list", "--json", "--store", "memory:", "--service-url", SERVICE_URL, "--app", topics.app]
    assert pulsarflow_main(argv) == 0
    listed = json.loads(capsys.readouterr().out)["workflows"]
    assert sorted(w["workflow_id"] for w in listed) == ["p-1", "p-2"]
    transport.close()


def test_the_metrics_server_listens_on_loopback_by_default() -> None:
    server = MetricsServer(Metrics(), port=0)
    try:
        assert server.httpd.server_address[0] == "127.0.0.1"
    finally:
        server.httpd.server_close()
