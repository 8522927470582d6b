"""Why bytes do not decode, in words: where in the schema the reading stopped, and what it met.

The Avro reader reports an unknown union branch as ``IndexError: list index out of range``
and a truncated message as an ``EOFError`` about a negative length. For a dead letter's
reason this module reads the bytes again along the schema, field by field, and says what
went wrong and where: "unknown union branch 27 in WorkflowEngineMessage.message (this
release knows 25): written by a newer release?".
"""

from __future__ import annotations

from typing import Any

from pulsarflow.codec import HEADER_SIZE, MARKER
from pulsarflow.errors import DecodeError

PRIMITIVE_SIZES = {"float": 4, "double": 8}
MAX_DEPTH = 64


class _Stop(Exception):
    """Where and why the reading stopped."""


def explain_undecodable(schema: dict[str, Any], payload: bytes, error: DecodeError) -> str:
    """A reason for a dead letter: why ``payload`` is not a message of ``schema`` (a parsed JSON schema)."""
    name = _short(schema["name"])
    if not payload:
        return f"an empty message, not a {name}: whatever published it sent no bytes"
    if _looks_like_text(payload):
        return (f"not a {name}: the {len(payload):,} bytes are text ({payload[:40]!r}), not Avro; publish "
                "with a pulsarflow client, which encodes messages with the schemas in schemas/")
    if payload[:len(MARKER)] == MARKER:  # the writer's identity: read the record that follows it
        if "written by a newer release" in str(error):
            return str(error)
        payload = payload[HEADER_SIZE:]
    reader = _Reader(payload)
    try:
        reader.read(schema, name, _named_types(schema, {}), 0)
    except _Stop as stop:
        return f"{stop} (offset {reader.pos:,} of {len(payload):,} bytes)"
    if reader.pos < len(payload):
        return (f"a {name} followed by {len(payload) - reader.pos:,} more bytes: written with a newer schema "
                "that has more fields, or two messages glued together?")
    return str(error)


def _named_types(schema: Any, named: dict[str, Any]) -> dict[str, Any]:
    """Every record, enum and fixed type of ``schema`` by full name (later uses refer to them by name)."""
    if isinstance(schema, list):
        for branch in schema:
            _named_types(branch, named)
    elif isinstance(schema, dict):
        if "name" in schema and schema.get("type") in ("record", "enum", "fixed"):
            named.setdefault(schema["name"], schema)
        for field in schema.get("fields", ()):
            _named_types(field["type"], named)
        for key in ("items", "values"):
            if key in schema:
                _named_types(schema[key], named)
    return named


def _short(fullname: str) -> str:
    return fullname.rsplit(".", 1)[-1]


def _looks_like_text(payload: bytes) -> bool:
    head = payload[:64]
    return head[:1] in (b"{", b"[", b"<", b'"') and all(32 <= b < 127 or b in (9, 10, 13) for b in head)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def read(self, schema: Any, path: str, named: dict[str, Any], depth: int) -> None:
        if depth > MAX_DEPTH:
            raise _Stop(f"{path} nests deeper than {MAX_DEPTH} levels: not a pulsarflow message")
        if isinstance(schema, list):
            return self._union(schema, path, named, depth)
        if isinstance(schema, str):
            return self._primitive(schema, path, named, depth)
        kind = schema["type"]
        if kind == "record":
            for field in schema["fields"]:
                self.read(field["type"], f"{path}.{field['name']}", named, depth + 1)
        elif kind == "enum":
            index = self._long(path)
            if not 0 <= index < len(schema["symbols"]):
                raise _Stop(f"unknown symbol {index} of enum {path} (this release knows {len(schema['symbols'])}): "
                            "written by a newer release?")
        elif kind == "array":
            self._blocks(path, lambda p: self.read(schema["items"], p, named, depth + 1))
        elif kind == "map":
            self._blocks(path, lambda p: self._entry(schema["values"], p, named, depth + 1))
        elif kind == "fixed":
            self._take(schema["size"], path)
        else:
            self.read(kind, path, named, depth)

    def _entry(self, values: Any, path: str, named: dict[str, Any], depth: int) -> None:
        self._text(path + " (a map key)")
        self.read(values, path, named, depth)

    def _union(self, branches: list[Any], path: str, named: dict[str, Any], depth: int) -> None:
        index = self._long(path)
        if not 0 <= index < len(branches):
            raise _Stop(f"unknown union branch {index} in {path} (this release knows {len(branches)}): "
                        "written by a newer release? Upgrade pulsarflow on every engine, then replay it")
        branch = branches[index]
        label = branch if isinstance(branch, str) else branch.get("name", branch["type"])
        self.read(branch, f"{path}<{_short(label)}>" if label != "null" else path, named, depth + 1)

    def _primitive(self, kind: str, path: str, named: dict[str, Any], depth: int) -> None:
        if kind == "null":
            return
        if kind == "boolean":
            if self._take(1, path) not in (b"\0", b"\1"):
                raise _Stop(f"{path} is not a boolean: not a pulsarflow message, or corrupted")
        elif kind in ("int", "long"):
            self._long(path)
        elif kind in PRIMITIVE_SIZES:
            self._take(PRIMITIVE_SIZES[kind], path)
        elif kind == "bytes":
            self._take(self._length(path), path)
        elif kind == "string":
            self._text(path)
        elif kind in named:
            self.read(named[kind], path, named, depth + 1)
        else:
            raise _Stop(f"{path} has the unknown type {kind!r} in this release's schema")

    def _blocks(self, path: str, item: Any) -> None:
        while True:
            count = self._long(path)
            if count == 0:
                return
            if count < 0:
                count = -count
                self._long(path)  # the block's size in bytes
            for i in range(count):
                item(f"{path}[{i}]")

    def _text(self, path: str) -> None:
        raw = self._take(self._length(path), path)
        try:
            raw.decode()
        except UnicodeDecodeError:
            raise _Stop(f"{path} is not UTF-8 text ({raw[:20]!r}...): not a pulsarflow message, or corrupted") from None

    def _length(self, path: str) -> int:
        length = self._long(path)
        if length < 0:
            raise _Stop(f"{path} has a negative length ({length}): not a pulsarflow message, or corrupted")
        return length

    def _long(self, path: str) -> int:
        shift = result = 0
        while True:
            byte = self._take(1, path)[0]
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return (result >> 1) ^ -(result & 1)
            shift += 7
            if shift > 63:
                raise _Stop(f"{path} holds a number longer than 64 bits: not a pulsarflow message, or corrupted")

    def _take(self, size: int, path: str) -> bytes:
        if self.pos + size > len(self.data):
            raise _Stop(f"the message ends inside {path} (it needs {size:,} more bytes, {len(self.data) - self.pos:,} "
                        "are left): truncated, or not a pulsarflow message")
        chunk = self.data[self.pos:self.pos + size]
        self.pos += size
        return chunk
