"""Payload conversion: user values (arguments, results, signal data) to bytes and back.

Protocol messages are Avro; the user values inside them travel as opaque bytes made by a
``PayloadConverter``. The default is JSON: JSON types, dataclasses, pydantic models,
datetimes, UUIDs, sets and tuples. Decoding uses type hints (of the task or workflow
signature) to rebuild dataclasses and pydantic models. Nothing here executes code that
came from the bytes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import typing
import uuid
from collections.abc import Sequence
from typing import Any, Protocol

from pulsarflow.errors import SerializationError


class PayloadConverter(Protocol):
    """Turns a list of values into bytes and back. Must round-trip what it accepts."""

    def encode(self, values: Sequence[Any]) -> bytes: ...

    def decode(self, data: bytes, hints: Sequence[Any] | None = None) -> list[Any]: ...


class JsonConverter:
    """The default converter: compact JSON, type-hint driven decoding."""

    def encode(self, values: Sequence[Any]) -> bytes:
        try:
            return json.dumps(list(values), default=_to_json, separators=(",", ":")).encode()
        except (TypeError, ValueError) as exc:
            raise SerializationError(
                f"{exc}. Pass JSON types, dataclasses or pydantic models, "
                "or give the worker a PayloadConverter that handles this type"
            ) from exc

    def decode(self, data: bytes, hints: Sequence[Any] | None = None) -> list[Any]:
        try:
            values = json.loads(data)
        except ValueError as exc:
            raise SerializationError(f"payload is not valid JSON ({len(data)} bytes): {exc}"
                                     f"{_codec_hint(data)}") from exc
        if not isinstance(values, list):
            raise SerializationError(f"payload must be a JSON list of values, got {type(values).__name__}")
        if not hints:
            return values
        return [from_json(v, h) for v, h in zip(values, hints)] + values[len(hints):]


# A payload that holds no value (a message field left empty), whatever the converter: read as None.
NO_VALUE = b""


def decode_one(converter: PayloadConverter, data: bytes, hint: Any = None) -> Any:
    """The one value ``data`` holds (None for NO_VALUE)."""
    if not data:
        return None
    values = converter.decode(data, [hint])
    return values[0] if values else None


def _to_json(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    dump = getattr(value, "model_dump", None)
    if callable(dump):  # pydantic v2
        return dump(mode="json")
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"value {value!r} of type {type(value).__qualname__} is not serializable")


def from_json(value: Any, hint: Any) -> Any:
    """Rebuild ``value`` as the type ``hint`` names, where it is a known structured type."""
    if hint is None or hint is Any or value is None:
        return value
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (list, tuple, set, frozenset, Sequence) and isinstance(value, list):
        item = args[0] if args else None
        items = [from_json(v, item) for v in value]
        return origin(items) if origin in (tuple, set, frozenset) else items
    if origin is dict and isinstance(value, dict) and len(args) == 2:
        return {k: from_json(v, args[1]) for k, v in value.items()}
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        non_none = [a for a in args if a is not type(None)]
        return from_json(value, non_none[0]) if len(non_none) == 1 else value
    if isinstance(hint, type):
        return _from_json_type(value, hint)
    return value


def _from_json_type(value: Any, hint: type) -> Any:
    if dataclasses.is_dataclass(hint) and isinstance(value, dict):
        types = typing.get_type_hints(hint)
        return hint(**{k: from_json(v, types.get(k)) for k, v in value.items()})
    validate = getattr(hint, "model_validate", None)
    if callable(validate):
        return validate(value)
    if hint is dt.datetime and isinstance(value, str):
        return dt.datetime.fromisoformat(value)
    if hint is dt.date and isinstance(value, str):
        return dt.date.fromisoformat(value)
    if hint is uuid.UUID and isinstance(value, str):
        return uuid.UUID(value)
    return value


# The first bytes of a payload a CodecChain wrote (pulsarflow.payloads): its codec names follow.
CODEC_MARKER = b"\xffPFC"


def _codec_hint(data: bytes) -> str:
    """Why JSON cannot read it, when a codec chain wrote it: the codecs this process lacks."""
    if bytes(data[:len(CODEC_MARKER)]) != CODEC_MARKER:
        return ""
    size = data[len(CODEC_MARKER)] if len(data) > len(CODEC_MARKER) else 0
    names = bytes(data[len(CODEC_MARKER) + 1:len(CODEC_MARKER) + 1 + size]).decode("ascii", errors="replace")
    return (f". It was written through a payload codec chain ({names or 'codecs unnamed'}): give this process "
            "the same codecs (CodecChain, or payload_codecs in the userConfig, --payload-codecs in the CLI)")

