"""Avro encoding of every protocol message and stored state.

This module is the only importer of fastavro. Messages are frozen dataclasses
(``pulsarflow.messages``); each maps to the Avro record of the same name. Schemas are
parsed once and the dataclass converters are built once per record, so a hot path is
one dict build plus fastavro's schemaless writer or reader.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastavro

from pulsarflow import schemas
from pulsarflow.errors import DecodeError, SchemaError
from pulsarflow.messages import NAMESPACE, RECORD_CLASSES

Convert = Callable[[Any], Any]


class Codec:
    """Encodes and decodes messages with the schemas of one folder (the current ones by default)."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder or schemas.schema_dir()
        self.named = schemas.load_folder(self.folder)
        self._history: dict[str, Codec] = {}
        self._parsed: dict[str, Any] = {}
        self._to_avro: dict[str, Convert] = {}
        self._from_avro: dict[str, Convert] = {}
        self._resolved: dict[tuple[int, str], Any] = {}

    def schema_json(self, name: str) -> dict[str, Any]:
        """The self-contained JSON schema of a record (what the schema registry stores)."""
        return schemas.expand(self._fullname(name), self.named)

    def encode(self, obj: Any) -> bytes:
        name = f"{NAMESPACE}.{type(obj).__name__}"
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, self._schema(name), self._writer(name)(obj))
        return buf.getvalue()

    def decode(self, cls: type | str, data: bytes, writer: Codec | None = None) -> Any:
        """Decode ``data``; ``writer`` is the codec of the schemas it was written with, if older."""
        name = self._fullname(cls if isinstance(cls, str) else cls.__name__)
        reader_schema = self._schema(name)
        writer_schema = writer._schema(name) if writer is not None else reader_schema
        buf = io.BytesIO(data)
        try:
            raw = fastavro.schemaless_reader(
                buf, writer_schema, reader_schema if writer is not None else None,
                return_record_name=True, return_record_name_override=True,
            )
        except Exception as exc:  # fastavro raises many types on bad bytes
            raise DecodeError(name, len(data), f"{type(exc).__name__}: {exc}") from exc
        if buf.tell() != len(data):
            raise DecodeError(name, len(data), f"{len(data) - buf.tell()} trailing bytes after the record")
        try:
            return self._reader(name)(raw)
        except (TypeError, KeyError, ValueError) as exc:
            raise DecodeError(name, len(data), f"decoded record does not fit {name}: {exc}") from exc

    def decode_version(self, cls: type | str, data: bytes, version: str | None) -> Any:
        """Decode data written with the frozen schemas ``version`` (None: the current ones)."""
        if version is None:
            return self.decode(cls, data)
        writer = self._history.get(version)
        if writer is None:
            folder = self.folder / "history" / version
            if not folder.is_dir():
                name = cls if isinstance(cls, str) else cls.__name__
                known = sorted(p.name for p in (self.folder / "history").glob("*") if p.is_dir())
                raise DecodeError(name, len(data), f"unknown schema version {version!r} (known: {known})")
            writer = self._history[version] = Codec(folder)
        return self.decode(cls, data, writer=writer)

    def _fullname(self, name: str) -> str:
        full = name if "." in name else f"{NAMESPACE}.{name}"
        if full not in self.named:
            raise SchemaError(f"no schema named {full} in {sorted(self.named)}")
        return full

    def _schema(self, name: str) -> Any:
        parsed = self._parsed.get(name)
        if parsed is None:
            try:
                parsed = fastavro.parse_schema(self.schema_json(name))
            except Exception as exc:
                raise SchemaError(f"schema {name} is invalid: {exc}") from exc
            self._parsed[name] = parsed
        return parsed

    def _writer(self, name: str) -> Convert:
        conv = self._to_avro.get(name)
        if conv is None:
            conv = self._build(name, self._to_avro, to_avro=True)
        return conv

    def _reader(self, name: str) -> Convert:
        conv = self._from_avro.get(name)
        if conv is None:
            conv = self._build(name, self._from_avro, to_avro=False)
        return conv

    def _build(self, name: str, cache: dict[str, Convert], to_avro: bool) -> Convert:
        builder = _ConverterBuilder(self.named, cache, to_avro)
        return builder.record(name)


class _ConverterBuilder:
    """Builds converters between dataclasses and fastavro's dicts, following a schema."""

    def __init__(self, named: dict[str, dict[str, Any]], cache: dict[str, Convert], to_avro: bool) -> None:
        self.named = named
        self.cache = cache
        self.to_avro = to_avro

    def record(self, name: str) -> Convert:
        if name in self.cache:
            return self.cache[name]
        cls = RECORD_CLASSES.get(name)
        if cls is None:
            raise SchemaError(f"record {name} has no message class in pulsarflow.messages")
        plain: list[str] = []
        nested: list[tuple[str, Convert]] = []

        if self.to_avro:
            def convert(value: Any) -> Any:
                out = {f: getattr(value, f) for f in plain}
                for f, c in nested:
                    out[f] = c(getattr(value, f))
                return out
        else:
            def convert(value: Any) -> Any:
                for f, c in nested:
                    value[f] = c(value[f])
                return cls(**value)

        self.cache[name] = convert  # registered before its fields, for recursive records
        for f in self.named[name]["fields"]:
            conv = self.of(f["type"])
            if conv is None:
                plain.append(f["name"])
            else:
                nested.append((f["name"], conv))
        return convert

    def of(self, schema: schemas.Schema) -> Convert | None:
        if isinstance(schema, str):
            if schema in schemas.PRIMITIVES or self.named[schema]["type"] != "record":
                return None
            return self._lazy(schema)
        if isinstance(schema, list):
            return self._union(schema)
        if schema["type"] == "array":
            return self._array(self.of(schema["items"]))
        if schema["type"] == "record":
            return self._lazy(schemas.fullname(schema))
        return None

    def _lazy(self, name: str) -> Convert:
        if name in self.cache:  # already built, or being built (a recursive record): bind late
            return lambda value: self.cache[name](value)
        return self.record(name)

    def _array(self, item: Convert | None) -> Convert:
        if self.to_avro:
            return (lambda v: [item(x) for x in v]) if item else list
        return (lambda v: tuple(item(x) for x in v)) if item else tuple

    def _union(self, branches: list[Any]) -> Convert | None:
        others = [b for b in branches if b != "null"]
        if len(others) == 1:
            inner = self.of(others[0])
            return (lambda v: None if v is None else inner(v)) if inner else None
        for b in others:
            if not (isinstance(b, str) and self.named.get(b, {}).get("type") == "record"):
                raise SchemaError(f"unions of several branches must hold only records, found {b!r}")
        by_class = {b.rsplit(".", 1)[1]: (b, self._lazy(b)) for b in others}
        by_name = {b: conv for b, conv in by_class.values()}
        if self.to_avro:
            def write(value: Any) -> Any:
                full, conv = by_class[type(value).__name__]
                return (full, conv(value))
            return write
        fields = {frozenset(f["name"] for f in self.named[b]["fields"]): conv for b, conv in by_class.values()}

        def read(pair: Any) -> Any:
            if isinstance(pair, tuple):
                return by_name[pair[0]](pair[1])
            # Written under a one-branch union (an older schema): fastavro gives the bare
            # record, so the branch is the record whose fields it has.
            return fields[frozenset(pair)](pair)
        return read
