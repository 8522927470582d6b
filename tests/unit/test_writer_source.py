"""A writer identity no frozen release knows is asked of the codec's WriterSource once (on Pulsar:
the schema registry); what the source knows is read (the newer fields skipped), what it does not
know is still refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from pulsarflow import schemas
from pulsarflow.codec import HEADER_FIELD, HEADER_SIZE, Codec
from pulsarflow.errors import BackendError, NewerWriterError
from pulsarflow.messages import TimerFired, WorkflowEngineMessage

ENVELOPE = WorkflowEngineMessage("m1", "wf-1", 123, TimerFired(position=3, purpose="SLEEP", generation=0))


def newer_release(tmp_path: Path) -> Codec:
    """The current schemas plus a field a newer release added to TimerFired (with a default)."""
    folder = tmp_path / "newer"
    shutil.copytree(schemas.schema_dir(), folder, ignore=shutil.ignore_patterns("history", "__pycache__"))
    path = folder / "TimerFired.avsc"
    record = json.loads(path.read_text())
    record["fields"].append({"name": "jitter_ms", "type": "long", "default": 0, "doc": "a newer field"})
    path.write_text(json.dumps(record))
    return Codec(folder)


def written_by(newer: Codec) -> bytes:
    """ENVELOPE as the newer release writes it: its identity, and the field it added."""
    import io

    import fastavro

    name = "pulsarflow.WorkflowEngineMessage"
    current = Codec()
    plain = io.BytesIO(current.encode(ENVELOPE)[HEADER_SIZE:])  # the record as fastavro's dict
    record: Any = fastavro.schemaless_reader(plain, current._schema(name), return_record_name=True)
    record["message"][1]["jitter_ms"] = 250
    buf = io.BytesIO()
    buf.write(b"\xc3\x01" + newer.fingerprint(name))
    fastavro.schemaless_writer(buf, fastavro.parse_schema(newer.schema_json(name)), record)
    return buf.getvalue()


class Registry:
    def __init__(self, *known: dict[str, Any], down: bool = False) -> None:
        self.known, self.down, self.asked = list(known), down, 0

    def writer_schemas(self, name: str) -> list[dict[str, Any]]:
        self.asked += 1
        if self.down:
            raise BackendError("registry unreachable")
        return [s for s in self.known if s["name"].endswith(name.rsplit(".", 1)[-1])]


def test_a_newer_writer_known_to_the_registry_is_read_and_asked_once(tmp_path: Path) -> None:
    newer = newer_release(tmp_path)
    data = written_by(newer)
    assert data[2:HEADER_SIZE] != Codec().fingerprint("WorkflowEngineMessage")
    with pytest.raises(NewerWriterError):
        Codec().decode(WorkflowEngineMessage, data)
    registry = Registry(newer.wire_schema("WorkflowEngineMessage"))
    codec = Codec(writers=registry)
    assert codec.decode(WorkflowEngineMessage, data) == ENVELOPE  # the newer field is skipped
    assert codec.decode(WorkflowEngineMessage, data) == ENVELOPE
    assert registry.asked == 1


def test_plain_schemas_from_the_registry_work_as_well_as_wire_schemas(tmp_path: Path) -> None:
    newer = newer_release(tmp_path)
    plain = newer.schema_json("WorkflowEngineMessage")
    assert plain["fields"][0]["name"] != HEADER_FIELD
    assert Codec(writers=Registry(plain)).decode(WorkflowEngineMessage, written_by(newer)) == ENVELOPE


def test_an_identity_the_registry_does_not_know_either_is_refused_naming_it(tmp_path: Path) -> None:
    data = bytearray(Codec().encode(ENVELOPE))
    data[2:HEADER_SIZE] = b"\x07" * 8
    registry = Registry(newer_release(tmp_path).wire_schema("WorkflowEngineMessage"))
    codec = Codec(writers=registry)
    for _ in range(2):
        with pytest.raises(NewerWriterError, match="0707070707070707.*or the schema registry knows"):
            codec.decode(WorkflowEngineMessage, bytes(data))
    assert registry.asked == 1  # once per identity, not once per message


def test_a_registry_outage_is_an_outage_and_is_asked_again(tmp_path: Path) -> None:
    newer = newer_release(tmp_path)
    registry = Registry(newer.wire_schema("WorkflowEngineMessage"), down=True)
    codec = Codec(writers=registry)
    with pytest.raises(BackendError, match="unreachable"):
        codec.decode(WorkflowEngineMessage, written_by(newer))
    registry.down = False
    assert codec.decode(WorkflowEngineMessage, written_by(newer)) == ENVELOPE
    assert registry.asked == 2


def test_the_wire_schema_reads_exactly_the_encoded_bytes() -> None:
    import io

    import fastavro

    codec = Codec()
    data = codec.encode(ENVELOPE)
    record = fastavro.schemaless_reader(io.BytesIO(data), fastavro.parse_schema(codec.wire_schema(
        "WorkflowEngineMessage")))
    assert isinstance(record, dict)
    assert record[HEADER_FIELD] == data[:HEADER_SIZE]
    assert record["workflow_id"] == "wf-1" and record["message"]["position"] == 3
    assert codec.wire_schema_of(data) == codec.wire_schema("WorkflowEngineMessage")
    assert codec.wire_schema_of(data[HEADER_SIZE:]) is None
