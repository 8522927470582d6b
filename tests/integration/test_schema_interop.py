"""The registered schemas are the truth on the wire: any Avro reader of the registry reads our messages.

The distribution's own Java client (``bin/pulsar-client consume -st auto_consume``) reads a
workflow-engine message and an event through the schema versions the broker stamped on them
and prints their fields; the namespace refuses a producer without a schema; and every
message the engines publish carries the registry's version of its writer's schema.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
import uuid
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from pulsarflow.codec import HEADER_FIELD, Codec
from tests.e2e import flows
from tests.integration.conftest import SERVICE_URL, wait_for

pytestmark = pytest.mark.pulsar


def java_client() -> Path:
    dist = os.environ.get("PULSAR_DIST", "")
    tool = Path(dist) / "bin" / "pulsar-client"
    if not dist or not tool.exists():
        if os.environ.get("CI") == "true":
            pytest.fail("PULSAR_DIST (the unpacked distribution) is not set: .ci/run sets it")
        pytest.skip("PULSAR_DIST (the unpacked distribution) is not set")
    return tool


def subscribed(admin: Any, topic: str, subscription: str) -> bool:
    response = admin.http.get(f"{admin.url}/admin/v2/{topic.replace('://', '/')}/stats", timeout=10)
    return response.status_code == 200 and subscription in response.json().get("subscriptions", {})


def test_the_java_client_reads_engine_messages_and_events_as_records(deployment, client, pulsar_admin) -> None:  # type: ignore[no-untyped-def]
    tool = java_client()
    manifest, _, _ = deployment
    topics = manifest.topics
    readers = {}
    for topic in (topics.workflow_engine, topics.events):
        subscription = f"java-{uuid.uuid4().hex[:6]}"
        readers[topic] = (subscription, subprocess.Popen(
            [str(tool), "--url", SERVICE_URL, "consume", "-s", subscription, "-st", "auto_consume", "-n", "1",
             "-t", "Exclusive", topic], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    try:
        for topic, (subscription, _) in readers.items():
            wait_for(partial(subscribed, pulsar_admin, topic, subscription), 90,
                     f"the Java consumer of {topic}")
        assert client.start(flows.sequence, 2).result(timeout=120) == 1
        printed = {topic: process.communicate(timeout=90)[0] for topic, (_, process) in readers.items()}
    finally:
        for _, process in readers.values():
            if process.poll() is None:
                process.kill()
    for topic, output in printed.items():
        contents = re.findall(r"content:(.*)", output)
        assert contents, f"the Java client printed no message of {topic}:\n{output[-3000:]}"
        record = contents[0]
        assert record.startswith("{") and f"{HEADER_FIELD}=" in record and "workflow_id=" in record, \
            f"not read as a record through the registered schema: {record[:500]}"
    assert "message={" in re.findall(r"content:(.*)", printed[topics.workflow_engine])[0]  # the union's branch
    assert "type=" in re.findall(r"content:(.*)", printed[topics.events])[0]


def test_a_producer_without_a_schema_is_refused_on_the_apps_namespace(deployment, pulsar_admin) -> None:  # type: ignore[no-untyped-def]
    import pulsar

    manifest, report, _ = deployment
    topics = manifest.topics
    assert pulsar_admin.schema_validation(topics.tenant, topics.namespace) is True
    assert any("producers without a schema are refused" in line for line in report), report
    raw = pulsar.Client(SERVICE_URL, operation_timeout_seconds=15)
    try:
        with pytest.raises(pulsar.exceptions.IncompatibleSchema):
            raw.create_producer(topics.workflow_engine).send(b"bytes without a schema")
    finally:
        raw.close()


def test_engine_messages_carry_the_registry_version_of_their_writer_schema(deployment, client, pulsar_admin) -> None:  # type: ignore[no-untyped-def]
    import pulsar

    manifest, _, _ = deployment
    topic = manifest.topics.events
    registered = pulsar_admin.schema(topic)
    assert registered is not None and registered["type"] == "AVRO"
    codec = Codec()
    assert Codec.wire_schema(codec, "WorkflowEvent") == _json(registered["data"]), \
        "the registry holds another schema than the engines' producers attach"
    raw = pulsar.Client(SERVICE_URL, operation_timeout_seconds=15)
    try:
        consumer = raw.subscribe(topic, f"version-{uuid.uuid4().hex[:6]}")
        assert client.start(flows.sequence, 2).result(timeout=120) == 1
        deadline = time.monotonic() + 60
        versions: set[int] = set()
        while time.monotonic() < deadline and not versions:
            message = consumer.receive(timeout_millis=30_000)
            versions.add(message._message.int_schema_version())
            codec.decode("WorkflowEvent", message.data())  # and the bytes are what the codec reads
    finally:
        raw.close()
    assert versions == {int(registered["version"])}


def _json(data: Any) -> Any:
    import json

    return json.loads(data) if isinstance(data, str) else data


def test_an_engine_reads_a_newer_releases_message_through_the_registry(pulsar_admin, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import pulsar

    from pulsarflow.errors import NewerWriterError
    from pulsarflow.messages import WorkflowEngineMessage
    from pulsarflow.pulsar.registry import RegistryWriters
    from tests.unit.test_writer_source import ENVELOPE, newer_release, written_by

    newer = newer_release(tmp_path)
    topic = f"persistent://public/default/registry-{uuid.uuid4().hex[:8]}"
    pulsar_admin.upload_schema(topic, newer.wire_schema("WorkflowEngineMessage"))  # as its deploy did
    data = written_by(newer)
    raw = pulsar.Client(SERVICE_URL, operation_timeout_seconds=15)
    try:
        missing = f"persistent://public/default/registry-none-{uuid.uuid4().hex[:8]}"
        with pytest.raises(NewerWriterError, match="or the schema registry knows"):
            Codec(writers=RegistryWriters(raw, {"WorkflowEngineMessage": [missing]})).decode(
                WorkflowEngineMessage, data)
        codec = Codec(writers=RegistryWriters(raw, {"WorkflowEngineMessage": [topic]}))
        assert codec.decode(WorkflowEngineMessage, data) == ENVELOPE
    finally:
        raw.close()
