"""The compiled Avro writer writes, for every record of every schema, the bytes fastavro writes."""

from __future__ import annotations

import copy
import dataclasses
import io
from typing import Any

import fastavro
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pulsarflow import schemas
from pulsarflow.avro_writer import compile_record
from pulsarflow.codec import HEADER_SIZE, Codec
from pulsarflow.messages import RECORD_CLASSES, ExecuteTask, RetrySpec

CODEC = Codec()
RECORDS = sorted(name for name in RECORD_CLASSES if name in CODEC.named)


def datum(schema: schemas.Schema, named: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
    """Data fastavro writes for ``schema``: dicts for records, (name, dict) for a branch of a union of records."""
    if isinstance(schema, str):
        primitive = {"null": st.none(), "boolean": st.booleans(), "int": st.integers(-2**31, 2**31 - 1),
                     "long": st.integers(-2**63, 2**63 - 1), "double": st.floats(allow_nan=False),
                     "bytes": st.binary(max_size=12), "string": st.text(max_size=8)}
        if schema in primitive:
            return primitive[schema]
        return datum(named[schema], named, depth)
    if isinstance(schema, list):
        if len(schema) == 2 and "null" in schema:
            other = next(b for b in schema if b != "null")
            return st.none() if depth > 3 else st.none() | datum(other, named, depth + 1)
        branches: list[st.SearchStrategy[Any]] = []
        for branch in schema:
            name = branch if isinstance(branch, str) else schemas.fullname(branch)
            branches.append(st.tuples(st.just(name), datum(branch, named, depth + 1)))
        return st.one_of(branches)
    kind = schema["type"]
    if kind == "record":
        named[schemas.fullname(schema)] = schema
        return st.fixed_dictionaries({f["name"]: datum(f["type"], named, depth + 1) for f in schema["fields"]})
    if kind == "enum":
        named[schemas.fullname(schema)] = schema
        return st.sampled_from(schema["symbols"])
    if kind == "array":
        return st.lists(datum(schema["items"], named, depth + 1), max_size=0 if depth > 3 else 3)
    return datum(kind, named, depth)


def _register(schema: schemas.Schema, named: dict[str, Any]) -> None:
    """Every named type of an expanded schema, so that references by name resolve."""
    if isinstance(schema, list):
        for branch in schema:
            _register(branch, named)
    elif isinstance(schema, dict):
        if schema.get("type") in ("record", "enum"):
            named[schemas.fullname(schema)] = schema
        for f in schema.get("fields", []):
            _register(f["type"], named)
        if schema.get("type") == "array":
            _register(schema["items"], named)


@pytest.mark.parametrize("name", RECORDS)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_record_is_written_as_fastavro_writes_it(name: str, data: st.DataObject) -> None:
    schema = CODEC.schema_json(name)
    named: dict[str, Any] = {}
    _register(schema, named)
    record = data.draw(datum(schema, named))
    expected = io.BytesIO()
    fastavro.schemaless_writer(expected, fastavro.parse_schema(schema), copy.deepcopy(record))
    obj = CODEC._reader(name)(copy.deepcopy(record))  # the dataclass fastavro's dict stands for
    assert compile_record(schema)(obj) == expected.getvalue()
    assert CODEC.decode(type(obj), CODEC.encode(obj)) == obj


def _task(**changes: Any) -> ExecuteTask:
    retry = RetrySpec(3, 10, 2.0, 100, 0.0, ())
    task = ExecuteTask("wf", 0, "svc", "t", b"[]", 1, 0, retry)
    return dataclasses.replace(task, **changes)


@pytest.mark.parametrize("changes", [
    {"workflow_id": None}, {"workflow_id": 3}, {"position": "0"}, {"position": 2**31}, {"input": "text"},
    {"attempt": 1.5}, {"retry": None}, {"retry": RetrySpec(backoff_coefficient="2")},  # type: ignore[arg-type]
])
def test_a_value_of_the_wrong_type_is_refused(changes: dict[str, Any]) -> None:
    with pytest.raises((TypeError, ValueError, AttributeError)):
        CODEC.encode(_task(**changes))


def test_the_codec_still_leads_with_the_writer_identity() -> None:
    payload = CODEC.encode(_task())
    assert payload[:HEADER_SIZE] == b"\xc3\x01" + CODEC.fingerprint("ExecuteTask")
    assert CODEC.decode(ExecuteTask, payload) == _task()
