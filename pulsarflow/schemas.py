"""Locating and loading the Avro schema files (``schemas/*.avsc``).

The files are the source of truth. In a source checkout they are read from the
top-level ``schemas/`` folder; an installed package carries a copy as
``pulsarflow/_schemas`` (see setup.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pulsarflow.errors import SchemaError

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})

Schema = Any  # an Avro schema in its JSON form: str, list or dict


def schema_dir() -> Path:
    """The folder holding the current ``.avsc`` files."""
    installed = Path(__file__).parent / "_schemas"
    if installed.is_dir():
        return installed
    source = Path(__file__).resolve().parent.parent / "schemas"
    if source.is_dir():
        return source
    raise SchemaError(f"no schema folder found at {installed} or {source}; reinstall pulsarflow")


def load_folder(folder: Path) -> dict[str, dict[str, Any]]:
    """Every named type defined in a folder, by full name (``pulsarflow.StartWorkflow``)."""
    named: dict[str, dict[str, Any]] = {}
    for path in sorted(folder.glob("*.avsc")):
        try:
            schema = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise SchemaError(f"{path} is not valid JSON: {exc}") from exc
        _collect(schema, named, str(path))
    return named


def fullname(schema: dict[str, Any], namespace: str | None = None) -> str:
    name: str = schema["name"]
    ns = schema.get("namespace", namespace)
    return name if "." in name or not ns else f"{ns}.{name}"


def _collect(schema: Schema, named: dict[str, dict[str, Any]], origin: str) -> None:
    if isinstance(schema, list):
        for branch in schema:
            _collect(branch, named, origin)
    elif isinstance(schema, dict):
        kind = schema.get("type")
        if kind in ("record", "enum", "fixed"):
            name = fullname(schema)
            if name in named and named[name] != schema:
                raise SchemaError(f"{origin}: type {name} is defined twice with different content")
            named[name] = schema
            for field in schema.get("fields", []):
                _collect(field["type"], named, origin)
        elif kind == "array":
            _collect(schema["items"], named, origin)
        elif kind == "map":
            _collect(schema["values"], named, origin)


def expand(name: str, named: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A self-contained schema for ``name``: each named type inlined at its first use."""
    seen: set[str] = set()

    def walk(schema: Schema) -> Schema:
        if isinstance(schema, str):
            if schema in PRIMITIVES:
                return schema
            if schema not in named:
                raise SchemaError(f"schema {name} refers to unknown type {schema!r}")
            if schema in seen:
                return schema
            return walk(named[schema])
        if isinstance(schema, list):
            return [walk(b) for b in schema]
        kind = schema.get("type")
        if kind in ("record", "enum", "fixed"):
            seen.add(fullname(schema))
            out = dict(schema, name=fullname(schema))
            out.pop("namespace", None)
            if kind == "record":
                out["fields"] = [dict(f, type=walk(f["type"])) for f in schema["fields"]]
            return out
        if kind == "array":
            return dict(schema, items=walk(schema["items"]))
        if kind == "map":
            return dict(schema, values=walk(schema["values"]))
        return schema

    expanded = walk(name)
    assert isinstance(expanded, dict), f"{name} is not a named type"
    return expanded
