"""Schema evolution: can a reader schema read what a writer schema wrote?

Applies Avro's resolution rules to the JSON schemas and reports every problem with the
schema and field it concerns. ``BACKWARD`` means the new schemas read old data; the
project's release rule is ``BACKWARD_TRANSITIVE``: the current schemas read data written
with every frozen version in ``schemas/history/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pulsarflow import schemas

PROMOTIONS = {
    "int": {"int", "long", "float", "double"},
    "long": {"long", "float", "double"},
    "float": {"float", "double"},
    "string": {"string", "bytes"},
    "bytes": {"bytes", "string"},
}


class Checker:
    """Compares one writer type system with one reader type system."""

    def __init__(self, writer: dict[str, dict[str, Any]], reader: dict[str, dict[str, Any]]) -> None:
        self.writer = writer
        self.reader = reader
        self.problems: list[str] = []
        self._seen: set[tuple[str, str]] = set()

    def check(self, name: str) -> list[str]:
        if name not in self.reader:
            self.problems.append(f"{name}: the reading schemas have no such type")
        else:
            self._compare(name, name, name)
        return self.problems

    def _resolve(self, schema: Any, named: dict[str, dict[str, Any]]) -> Any:
        return named.get(schema, schema) if isinstance(schema, str) else schema

    def _compare(self, w: Any, r: Any, where: str) -> bool:
        w, r = self._resolve(w, self.writer), self._resolve(r, self.reader)
        if isinstance(w, list):
            ok = [self._readable(b, r, where) for b in w]
            return all(ok)
        if isinstance(r, list):
            if not any(self._quiet(w, b) for b in r):
                self.problems.append(f"{where}: type {_label(w)} is not in the new union {_labels(r)}")
                return False
            return True
        return self._same_kind(w, r, where)

    def _readable(self, w_branch: Any, r: Any, where: str) -> bool:
        if isinstance(r, list):
            same = _same_name(self._resolve(w_branch, self.writer), [self._resolve(b, self.reader) for b in r])
            if same is not None:
                return self._compare(w_branch, same, where)
            if any(self._quiet(w_branch, b) for b in r):
                return True
            self.problems.append(f"{where}: union branch {_label(self._resolve(w_branch, self.writer))} "
                                 f"can no longer be read (new type {_labels(r)})")
            return False
        return self._compare(w_branch, r, where)

    def _quiet(self, w: Any, r: Any) -> bool:
        probe = Checker(self.writer, self.reader)
        probe._seen = set(self._seen)
        return probe._compare(w, r, "") and not probe.problems

    def _same_kind(self, w: Any, r: Any, where: str) -> bool:
        wk, rk = _kind(w), _kind(r)
        if wk in PROMOTIONS or wk in ("null", "boolean", "double"):
            if rk == wk or rk in PROMOTIONS.get(wk, set()):
                return True
            self.problems.append(f"{where}: type changed from {wk} to {rk}")
            return False
        if wk != rk:
            self.problems.append(f"{where}: type changed from {_label(w)} to {_label(r)}")
            return False
        if wk == "array":
            return self._compare(w["items"], r["items"], f"{where}[]")
        if wk == "map":
            return self._compare(w["values"], r["values"], f"{where}{{}}")
        if wk == "enum":
            return self._enum(w, r, where)
        if wk == "record":
            return self._record(w, r)
        return True

    def _enum(self, w: dict[str, Any], r: dict[str, Any], where: str) -> bool:
        missing = [s for s in w["symbols"] if s not in r["symbols"]]
        if missing and "default" not in r:
            self.problems.append(f"{where}: enum symbols {missing} were removed and the enum has no default")
            return False
        return True

    def _record(self, w: dict[str, Any], r: dict[str, Any]) -> bool:
        key = (schemas.fullname(w), schemas.fullname(r))
        if key in self._seen:
            return True
        self._seen.add(key)
        name = schemas.fullname(r)
        before = len(self.problems)
        w_fields = {f["name"]: f for f in w["fields"]}
        for field in r["fields"]:
            old = w_fields.get(field["name"]) or _by_alias(w_fields, field)
            if old is None:
                if "default" not in field:
                    self.problems.append(f"{name}.{field['name']}: required by the reader (no default) but "
                                         "absent from the writer (a field added without a default, or removed)")
            else:
                self._compare(old["type"], field["type"], f"{name}.{field['name']}")
        return len(self.problems) == before


def _same_name(w: Any, branches: list[Any]) -> Any:
    if not (isinstance(w, dict) and "name" in w):
        return None
    for b in branches:
        if isinstance(b, dict) and "name" in b and schemas.fullname(b) == schemas.fullname(w):
            return b
    return None


def _by_alias(w_fields: dict[str, dict[str, Any]], field: dict[str, Any]) -> dict[str, Any] | None:
    for alias in field.get("aliases", []):
        if alias in w_fields:
            return w_fields[alias]
    return None


def _kind(schema: Any) -> str:
    return schema if isinstance(schema, str) else str(schema.get("type"))


def _label(schema: Any) -> str:
    return schemas.fullname(schema) if isinstance(schema, dict) and "name" in schema else _kind(schema)


def _labels(union: list[Any]) -> str:
    return "[" + ", ".join(b if isinstance(b, str) else _label(b) for b in union) + "]"


def problems(writer: dict[str, dict[str, Any]], reader: dict[str, dict[str, Any]],
             names: list[str] | None = None) -> list[str]:
    """Every reason ``reader`` cannot read data written with ``writer`` (empty: compatible)."""
    out: list[str] = []
    for name in names or sorted(n for n, s in writer.items() if s.get("type") == "record"):
        out += [p for p in Checker(writer, reader).check(name) if p not in out]
    return out


def history_folders(root: Path | None = None) -> list[Path]:
    base = (root or schemas.schema_dir()) / "history"
    return sorted((p for p in base.iterdir() if p.is_dir() and any(p.glob("*.avsc"))),
                  key=lambda p: tuple(int(x) if x.isdigit() else x for x in p.name.split("."))) \
        if base.is_dir() else []


def check_history(root: Path | None = None) -> dict[str, dict[str, list[str]]]:
    """For each frozen version: problems reading it with the current schemas, and the reverse."""
    current = schemas.load_folder(root or schemas.schema_dir())
    report: dict[str, dict[str, list[str]]] = {}
    for folder in history_folders(root):
        old = schemas.load_folder(folder)
        report[folder.name] = {"backward": problems(old, current), "forward": problems(current, old)}
    return report
