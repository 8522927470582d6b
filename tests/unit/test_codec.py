"""Every message type round-trips through Avro; classes and schemas agree; bad bytes fail clearly."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pulsarflow.codec import Codec
from pulsarflow.engines.outgoing import Decision
from pulsarflow.errors import DecodeError
from pulsarflow.messages import RECORD_CLASSES, TaskCompleted, WorkflowEngineMessage
from pulsarflow.runtime.handler import MessageHandler

CODEC = Codec()
INT = st.integers(-(2**31), 2**31 - 1)
LONG = st.integers(-(2**63), 2**63 - 1)
PRIMS: dict[str, st.SearchStrategy[Any]] = {
    "string": st.text(max_size=40) | st.sampled_from(["", "é日本🚀", "x" * 5000]),
    "bytes": st.binary(max_size=64) | st.sampled_from([b"", bytes(range(256)) * 400]),
    "int": INT | st.sampled_from([-(2**31), 2**31 - 1, 0]),
    "long": LONG | st.sampled_from([-(2**63), 2**63 - 1, 0]),
    "double": st.floats(allow_nan=False),
    "boolean": st.booleans(),
}


def strategy(schema: Any, depth: int = 0, codec: Codec = CODEC) -> st.SearchStrategy[Any]:
    """Values of ``schema`` as ``codec``'s schemas define it (an older codec: only what it can write)."""
    if isinstance(schema, str):
        return PRIMS[schema] if schema in PRIMS else strategy(codec.named[schema], depth, codec)
    if isinstance(schema, list):
        branches = [b for b in schema if b != "null"]
        inner = st.one_of(*[strategy(b, depth + 1, codec) for b in branches]) if depth < 3 else st.nothing()
        return st.none() | inner if "null" in schema else inner
    kind = schema["type"]
    if kind == "enum":
        return st.sampled_from(schema["symbols"])
    if kind == "array":
        return st.lists(strategy(schema["items"], depth + 1, codec), max_size=3).map(tuple)
    name = schema["name"] if "." in schema["name"] else f"{schema['namespace']}.{schema['name']}"
    fields = {f["name"]: strategy(f["type"], depth + 1, codec) for f in schema["fields"]}
    return st.builds(RECORD_CLASSES[name], **fields)


@pytest.mark.parametrize("name", sorted(RECORD_CLASSES))
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_round_trip_of_every_record(name: str, data: st.DataObject) -> None:
    value = data.draw(strategy(name))
    assert CODEC.decode(name, CODEC.encode(value)) == value


@pytest.mark.parametrize("name", sorted(RECORD_CLASSES))
def test_class_and_schema_agree_field_by_field(name: str) -> None:
    cls = RECORD_CLASSES[name]
    schema_fields = [f["name"] for f in CODEC.named[name]["fields"]]
    class_fields = [f.name for f in dataclasses.fields(cls)]
    assert sorted(schema_fields) == sorted(class_fields), name
    hints = typing.get_type_hints(cls)
    for field in CODEC.named[name]["fields"]:
        optional_in_schema = isinstance(field["type"], list) and "null" in field["type"]
        optional_in_class = type(None) in typing.get_args(hints[field["name"]])
        assert optional_in_schema == optional_in_class, f"{name}.{field['name']}"
        assert field.get("doc"), f"{name}.{field['name']} has no doc"


@pytest.mark.parametrize("data,reason", [
    (b"", "EOF"),
    (b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", ""),
    (b"\x02ab", ""),
])
def test_garbage_raises_a_typed_decode_error_with_size(data: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as info:
        CODEC.decode(WorkflowEngineMessage, data)
    assert info.value.size == len(data) and info.value.schema == "pulsarflow.WorkflowEngineMessage"
    assert reason in info.value.reason


def test_truncated_and_padded_messages_are_refused() -> None:
    good = CODEC.encode(WorkflowEngineMessage("m", "w", 1, TaskCompleted(0, b"[1]", 1)))
    for bad in (good[:-1], good[: len(good) // 2], good + b"\x00"):
        with pytest.raises(DecodeError, match=f"cannot decode {len(bad)} bytes"):
            CODEC.decode(WorkflowEngineMessage, bad)


def test_undecodable_message_goes_to_the_dead_letter_topic_with_its_reason() -> None:
    sent: list[tuple[str, bytes]] = []

    class Recorder:
        def send(self, topic: str, key: str, payload: bytes, deliver_at_ms: int | None = None) -> None:
            sent.append((topic, payload))

        def flush(self) -> None:
            pass

    class Clock:
        def now_ms(self) -> int:
            return 5

        def sleep_until(self, at_ms: int) -> None:
            pass

    class NeverCalled:
        input_type, state_type = WorkflowEngineMessage, None

        def key(self, envelope: Any) -> str:
            raise AssertionError("must not be reached")

        def handle(self, state: Any, envelope: Any, now_ms: int) -> Decision[Any]:
            raise AssertionError("must not be reached")

    handler = MessageHandler(NeverCalled(), CODEC, Recorder(), Clock(), None, "dlq")
    handler.handle("in-topic", b"\x01\x02garbage")
    [(topic, payload)] = sent
    letter = CODEC.decode("DeadLetter", payload)
    assert topic == "dlq" and letter.topic == "in-topic" and letter.payload == b"\x01\x02garbage"
    assert letter.size == 9 and "cannot decode 9 bytes" in letter.reason
