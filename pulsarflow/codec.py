"""Avro encoding of every protocol message and stored state.

This module is the only importer of fastavro. Messages are frozen dataclasses
(``pulsarflow.messages``); each maps to the Avro record of the same name. Schemas are
parsed once and the dataclass converters are built once per record, so a hot path is
one dict build plus fastavro's schemaless writer or reader.

Every encoded value carries the identity of the schema that wrote it: Avro single-object
encoding, ``C3 01`` then the 8-byte CRC-64-AVRO fingerprint of the writer schema, then
the binary record. Decoding looks the fingerprint up among the current schemas and every
frozen release in ``schemas/history/`` and resolves the writer schema to the current one,
so a message or a stored state written by an earlier release is read as that release
wrote it. An unknown fingerprint (a newer release wrote it) is refused with both
identities named, never misread. Bytes without the marker were written before writer
identities existed, by release 0.1.0: they are read with its schemas.

A codec may also be given a :class:`WriterSource` (on Pulsar: the schema registry, which
holds each topic's wire schemas as deploys registered them): a fingerprint no frozen
release knows is asked of it once, and a schema it knows is resolved like any other, so
an older engine reads what a newer one wrote (Avro's forward compatibility: fields it does
not know are skipped). What the source does not know either is still refused.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import fastavro

from pulsarflow import avro_writer, schemas
from pulsarflow.errors import DecodeError, NewerWriterError, SchemaError
from pulsarflow.messages import NAMESPACE, RECORD_CLASSES

Convert = Callable[[Any], Any]

MARKER = b"\xc3\x01"  # Avro single-object encoding
HEADER_SIZE = len(MARKER) + 8
HEADER_FIELD = "single_object_header"  # the header, as the first field of a record's wire schema
BASELINE_RELEASE = "0.1.0"  # the release whose bytes have no writer identity


class WriterSource(Protocol):
    """Where writer schemas beyond the frozen releases come from (the schema registry on Pulsar)."""

    def writer_schemas(self, name: str) -> list[dict[str, Any]]:
        """Schemas that may have written record ``name`` (plain or wire schemas), newest first."""
        ...


class Codec:
    """Encodes and decodes messages with the schemas of one folder (the current ones by default)."""

    def __init__(self, folder: Path | None = None, writers: WriterSource | None = None) -> None:
        self.folder = folder or schemas.schema_dir()
        self.writers = writers
        self._asked: set[tuple[str, bytes]] = set()  # identities already asked of ``writers``
        self.named = schemas.load_folder(self.folder)
        self._history: dict[str, Codec] = {}
        self._parsed: dict[str, Any] = {}
        self._from_avro: dict[str, Convert] = {}
        self._resolved: dict[tuple[int, str], Any] = {}
        self._fingerprints: dict[str, bytes] = {}
        self._writers: dict[str, dict[bytes, tuple[str, Any]]] = {}  # record -> fingerprint -> (release, schema)
        self._by_fingerprint: dict[bytes, tuple[Codec, str]] | None = None  # any record of any release
        # By message class: what encode needs (identity, parsed schema, converter) and decode
        # needs (record name, reader schema, identity), so a hot call is one dict lookup.
        self._encoders: dict[type, tuple[bytes, Callable[[Any], bytes]]] = {}
        self._decoders: dict[type | str, tuple[str, Any, bytes]] = {}

    def schema_json(self, name: str) -> dict[str, Any]:
        """The self-contained JSON schema of a record (what the schema registry stores)."""
        return schemas.expand(self._fullname(name), self.named)

    def wire_schema(self, name: str) -> dict[str, Any]:
        """The schema of exactly the bytes ``encode`` writes for a record, for the schema registry.

        The single-object header is ten bytes, which Avro reads as a ``fixed(10)``: the wire
        schema is the record with that header as its first field (with a default, so that
        the registry finds it compatible with the plain record), so any Avro reader given the
        registered schema (a Java consumer with ``auto_consume``) reads the record's fields.
        """
        plain = self.schema_json(name)
        header = {"name": HEADER_FIELD, "doc": "Avro single-object encoding header: C3 01, then the CRC-64-AVRO "
                  "fingerprint of the schema that wrote the rest (pulsarflow decodes with that schema).",
                  "type": {"type": "fixed", "name": f"{NAMESPACE}.SingleObjectHeader", "size": HEADER_SIZE},
                  "default": (MARKER + bytes(8)).decode("latin-1")}
        return dict(plain, fields=[header, *plain["fields"]])

    def wire_schema_of(self, payload: bytes) -> dict[str, Any] | None:
        """The wire schema of the record and release whose identity leads ``payload`` (None: none, or unknown)."""
        found = self._writer_of(payload)
        return found[0].wire_schema(found[1]) if found else None

    def record_name_of(self, payload: bytes) -> str | None:
        """The short name of the record whose identity leads ``payload`` (``WorkflowEvent``); None if unknown."""
        found = self._writer_of(payload)
        return found[1].rsplit(".", 1)[-1] if found else None

    def _writer_of(self, payload: bytes) -> tuple[Codec, str] | None:
        if payload[:2] != MARKER or len(payload) < HEADER_SIZE:
            return None
        if self._by_fingerprint is None:
            index: dict[bytes, tuple[Codec, str]] = {}
            for codec in [self, *(self._release_codec(r) for r in self._releases())]:
                for name, schema in codec.named.items():
                    if schema.get("type") == "record":
                        index.setdefault(codec.fingerprint(name), (codec, name))
            self._by_fingerprint = index
        return self._by_fingerprint.get(bytes(payload[2:HEADER_SIZE]))

    def encode(self, obj: Any) -> bytes:
        """The record's bytes, led by the identity of the schema that wrote them."""
        plan = self._encoders.get(type(obj))
        if plan is None:
            name = self._fullname(type(obj).__name__)
            plan = self._encoders[type(obj)] = (MARKER + self.fingerprint(name), self._compiled(name))
        header, write = plan
        return header + write(obj)

    def encode_legacy(self, obj: Any) -> bytes:
        """The record as release 0.1.0 wrote it (its schema, no identity), for readers of that release."""
        name = f"{NAMESPACE}.{type(obj).__name__}"
        if not (self.folder / "history" / BASELINE_RELEASE).is_dir():
            return self.encode(obj)
        baseline = self._release_codec(BASELINE_RELEASE)
        return baseline.encode(obj)[HEADER_SIZE:] if name in baseline.named else self.encode(obj)

    def encode_as(self, release: str, obj: Any) -> bytes:
        """The record as ``release`` (a frozen one) writes it, for readers of that release.

        Release 0.1.0 wrote no identity (see ``encode_legacy``); later ones write their own.
        Fields that release does not have are left out; a record it does not know is refused.
        """
        if release == BASELINE_RELEASE:
            return self.encode_legacy(obj)
        if not (self.folder / "history" / release).is_dir():
            raise SchemaError(f"no frozen schemas of release {release!r} in {self.folder / 'history'}")
        return self._release_codec(release).encode(obj)

    def fingerprint(self, name: str) -> bytes:
        """CRC-64-AVRO fingerprint of a record's schema (little-endian, as single-object encoding wants)."""
        full = self._fullname(name)
        found = self._fingerprints.get(full)
        if found is None:
            canonical = fastavro.schema.to_parsing_canonical_form(self.schema_json(full))
            found = int(fastavro.schema.fingerprint(canonical, "CRC-64-AVRO"), 16).to_bytes(8, "little")
            self._fingerprints[full] = found
        return found

    def decode(self, cls: type | str, data: bytes, writer: Codec | None = None) -> Any:
        """Decode ``data`` with the schema that wrote it (its identity, or ``writer``'s schemas) as the writer."""
        plan = self._decoders.get(cls)
        if plan is None:
            name = self._fullname(cls if isinstance(cls, str) else cls.__name__)
            plan = self._decoders[cls] = (name, self._schema(name), self.fingerprint(name))
        name, reader_schema, own = plan
        start = 0
        if data[:2] == MARKER and len(data) >= HEADER_SIZE:
            start = HEADER_SIZE
            if writer is not None:
                writer_schema = writer._schema(name)
            elif data[2:HEADER_SIZE] == own:
                writer_schema = reader_schema
            else:
                writer_schema = self._writer_schema(name, data[2:HEADER_SIZE], len(data))
        else:
            writer_schema = writer._schema(name) if writer is not None else self._legacy_writer(name)
        buf = io.BytesIO(data)
        buf.seek(start)
        try:
            raw = fastavro.schemaless_reader(
                buf, writer_schema, reader_schema if writer_schema is not reader_schema else None,
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

    def writer_release(self, cls: type | str, data: bytes) -> str | None:
        """The release whose schema wrote ``data`` ("current" for this one), None if unknown."""
        name = self._fullname(cls if isinstance(cls, str) else cls.__name__)
        if data[:2] != MARKER or len(data) < HEADER_SIZE:
            return BASELINE_RELEASE
        found = self._known_writers(name).get(bytes(data[2:HEADER_SIZE]))
        return found[0] if found else None

    def _writer_schema(self, name: str, fingerprint: bytes, size: int) -> Any:
        if fingerprint == self.fingerprint(name):
            return self._schema(name)
        found = self._known_writers(name).get(fingerprint)
        if found is None and self.writers is not None and (name, fingerprint) not in self._asked:
            for schema in self.writers.writer_schemas(name):  # an outage raises here, and is asked again
                with contextlib.suppress(SchemaError):  # not a schema this codec can read: not the writer
                    self.learn(schema)
            self._asked.add((name, fingerprint))
            found = self._known_writers(name).get(fingerprint)
        if found is None:
            where = "schemas/history/" + (" or the schema registry" if self.writers is not None else "")
            raise NewerWriterError(name, size, f"written with schema {fingerprint.hex()} of {name}, which neither this "
                              f"release (schema {self.fingerprint(name).hex()}) nor any earlier one in "
                              f"{where} knows: written by a newer release? upgrade this engine first")
        return found[1]

    def learn(self, schema: dict[str, Any]) -> bytes:
        """Know ``schema`` (a record's plain or wire schema, self-contained) as a writer; its fingerprint."""
        name, plain, fingerprint = _identity(schema)
        try:
            parsed = fastavro.parse_schema(plain, named_schemas={})
        except Exception as exc:
            raise SchemaError(f"a writer schema of {name} is invalid: {exc}") from exc
        if name in self.named:
            self._known_writers(name).setdefault(fingerprint, ("registry", parsed))
        return fingerprint

    def release_of(self, schema: dict[str, Any]) -> str | None:
        """The release ("current", or a frozen one) whose schema of that record ``schema`` is; None if none."""
        name, _, fingerprint = _identity(schema)
        found = self._known_writers(name).get(fingerprint) if name in self.named else None
        return found[0] if found else None

    def _known_writers(self, name: str) -> dict[bytes, tuple[str, Any]]:
        """Every schema of ``name`` that a release wrote with, by fingerprint (loaded once)."""
        known = self._writers.get(name)
        if known is None:
            known = {self.fingerprint(name): ("current", self._schema(name))}
            for release in self._releases():
                old = self._release_codec(release)
                if name in old.named:
                    known.setdefault(old.fingerprint(name), (release, old._schema(name)))
            self._writers[name] = known
        return known

    def _legacy_writer(self, name: str) -> Any:
        """Bytes without a writer identity come from the baseline release: its schema, if it had the record."""
        folder = self.folder / "history" / BASELINE_RELEASE
        if not folder.is_dir():
            return self._schema(name)
        baseline = self._release_codec(BASELINE_RELEASE)
        return baseline._schema(name) if name in baseline.named else self._schema(name)

    def _releases(self) -> list[str]:
        base = self.folder / "history"
        return sorted(p.name for p in base.glob("*") if p.is_dir() and any(p.glob("*.avsc"))) if base.is_dir() else []

    def _release_codec(self, release: str) -> Codec:
        codec = self._history.get(release)
        if codec is None:
            codec = self._history[release] = Codec(self.folder / "history" / release)
        return codec

    def decode_version(self, cls: type | str, data: bytes, version: str | None) -> Any:
        """Decode data written with the frozen schemas ``version`` (None: the current ones)."""
        if version is None:
            return self.decode(cls, data)
        if not (self.folder / "history" / version).is_dir():
            name = cls if isinstance(cls, str) else cls.__name__
            raise DecodeError(name, len(data), f"unknown schema version {version!r} (known: {self._releases()})")
        return self.decode(cls, data, writer=self._release_codec(version))

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

    def _compiled(self, name: str) -> Callable[[Any], bytes]:
        self._schema(name)  # a schema fastavro refuses is refused here too (SchemaError)
        try:
            return avro_writer.compile_record(self.schema_json(name))
        except ValueError as exc:
            raise SchemaError(f"schema {name} has no writer: {exc}") from exc

    def _reader(self, name: str) -> Convert:
        conv = self._from_avro.get(name)
        if conv is None:
            conv = _ConverterBuilder(self.named, self._from_avro).record(name)
        return conv


def _identity(schema: dict[str, Any]) -> tuple[str, dict[str, Any], bytes]:
    """A record schema's full name, its plain form (a wire schema loses its header) and fingerprint."""
    fields = schema.get("fields") or []
    if fields and isinstance(fields[0], dict) and fields[0].get("name") == HEADER_FIELD:
        schema = dict(schema, fields=fields[1:])
    name = str(schema.get("name", ""))
    name = name if "." in name else f"{schema.get('namespace', NAMESPACE)}.{name}"
    try:
        canonical = fastavro.schema.to_parsing_canonical_form(schema)
    except Exception as exc:
        raise SchemaError(f"a writer schema of {name} is invalid: {exc}") from exc
    return name, schema, int(fastavro.schema.fingerprint(canonical, "CRC-64-AVRO"), 16).to_bytes(8, "little")


class _ConverterBuilder:
    """Builds converters from fastavro's dicts to the dataclasses, following a schema (writing: avro_writer)."""

    def __init__(self, named: dict[str, dict[str, Any]], cache: dict[str, Convert]) -> None:
        self.named = named
        self.cache = cache

    def record(self, name: str) -> Convert:
        if name in self.cache:
            return self.cache[name]
        cls = RECORD_CLASSES.get(name)
        if cls is None:
            raise SchemaError(f"record {name} has no message class in pulsarflow.messages")
        nested: list[tuple[str, Convert]] = []

        def convert(value: Any) -> Any:
            for f, c in nested:
                value[f] = c(value[f])
            return cls(**value)

        self.cache[name] = convert  # registered before its fields, for recursive records
        for f in self.named[name]["fields"]:
            conv = self.of(f["type"])
            if conv is not None:
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

    @staticmethod
    def _array(item: Convert | None) -> Convert:
        return (lambda v: tuple(item(x) for x in v)) if item else tuple

    def _union(self, branches: list[Any]) -> Convert | None:
        others = [b for b in branches if b != "null"]
        if len(others) == 1:
            inner = self.of(others[0])
            return (lambda v: None if v is None else inner(v)) if inner else None
        for b in others:
            if not (isinstance(b, str) and self.named.get(b, {}).get("type") == "record"):
                raise SchemaError(f"unions of several branches must hold only records, found {b!r}")
        by_name = {b: self._lazy(b) for b in others}
        fields = {frozenset(f["name"] for f in self.named[b]["fields"]): conv for b, conv in by_name.items()}

        def read(pair: Any) -> Any:
            if isinstance(pair, tuple):
                return by_name[pair[0]](pair[1])
            # Written under a one-branch union (an older schema): fastavro gives the bare
            # record, so the branch is the record whose fields it has.
            return fields[frozenset(pair)](pair)
        return read
