"""Schema evolution: current schemas read every frozen version; bad changes are named precisely."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pulsarflow import evolution, schemas
from pulsarflow.cli import main as cli
from pulsarflow.codec import HEADER_SIZE, Codec
from pulsarflow.messages import RECORD_CLASSES
from tests.unit.test_codec import strategy

CURRENT = Codec()
FROZEN = evolution.history_folders()


def test_there_is_frozen_history() -> None:
    assert [f.name for f in FROZEN][:1] == ["0.1.0"]


@pytest.mark.parametrize("folder", FROZEN, ids=lambda f: f.name)
def test_current_schemas_read_every_frozen_version(folder: Path) -> None:
    assert evolution.problems(schemas.load_folder(folder), CURRENT.named) == []


@pytest.mark.parametrize("folder", FROZEN, ids=lambda f: f.name)
@pytest.mark.parametrize("name", sorted(RECORD_CLASSES))
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_random_data_written_with_old_schemas_decodes(folder: Path, name: str, data: st.DataObject) -> None:
    old = Codec(folder)
    if name not in old.named:
        return
    value = data.draw(strategy(name, codec=old))
    assert CURRENT.decode(name, old.encode(value), writer=old) == value


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "schemas"
    shutil.copytree(schemas.schema_dir(), root, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    return root


def _edit(root: Path, name: str, change: object) -> None:
    path = root / f"{name}.avsc"
    schema = json.loads(path.read_text())
    change(schema)  # type: ignore[operator]
    path.write_text(json.dumps(schema))


def test_new_optional_field_with_default_is_compatible_both_ways(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    _edit(root, "TaskCompleted", lambda s: s["fields"].append(
        {"name": "worker", "type": ["null", "string"], "default": None, "doc": "who ran it"}))
    new = schemas.load_folder(root)
    assert evolution.problems(CURRENT.named, new) == []
    assert evolution.problems(new, CURRENT.named) == []
    old_bytes = CURRENT.encode(RECORD_CLASSES["pulsarflow.TaskCompleted"](1, b"x", 2))
    raw = Codec(root)._schema("pulsarflow.TaskCompleted")  # the changed schema parses and resolves
    import io

    import fastavro
    body = old_bytes[HEADER_SIZE:]  # after the writer's identity
    decoded = fastavro.schemaless_reader(io.BytesIO(body), CURRENT._schema("pulsarflow.TaskCompleted"), raw)
    assert isinstance(decoded, dict)
    assert decoded["worker"] is None and decoded["attempts"] == 2
    assert cli(["schemas", "check", "--root", str(root)]) == 0


def test_new_field_without_default_is_refused_naming_schema_and_field(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    _edit(root, "ExecuteTask", lambda s: s["fields"].append(
        {"name": "urgency", "type": "int", "doc": "no default"}))
    [problem] = evolution.problems(CURRENT.named, schemas.load_folder(root))
    assert problem.startswith("pulsarflow.ExecuteTask.urgency: required by the reader (no default)")


def test_removed_field_without_default_breaks_old_readers(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    _edit(root, "TaskCompleted", lambda s: s["fields"].remove(
        next(f for f in s["fields"] if f["name"] == "attempts")))  # 'attempts' has no default
    new = schemas.load_folder(root)
    assert evolution.problems(CURRENT.named, new) == []  # the new reader ignores the old field
    [problem] = evolution.problems(new, CURRENT.named)  # old readers need it
    assert problem.startswith("pulsarflow.TaskCompleted.attempts: required by the reader")


def _retype(field: str, new_type: str) -> object:
    def change(schema: dict[str, Any]) -> None:
        for f in schema["fields"]:
            if f["name"] == field:
                f["type"] = new_type

    return change


def test_changed_type_is_refused_naming_schema_and_field(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    _edit(root, "TaskFailed", _retype("position", "string"))
    found = evolution.problems(CURRENT.named, schemas.load_folder(root))
    assert "pulsarflow.TaskFailed.position: type changed from int to string" in found
    frozen_root = root / "history" / "9.9.9"
    shutil.copytree(schemas.schema_dir(), frozen_root, ignore=shutil.ignore_patterns("__pycache__", "*.py", "history"))
    assert cli(["schemas", "check", "--root", str(root)]) == 1


def test_removed_union_branch_is_refused(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    _edit(root, "WorkflowEngineMessage", lambda s: s["fields"][-1]["type"].remove("pulsarflow.SendSignal"))
    found = evolution.problems(CURRENT.named, schemas.load_folder(root))
    assert any("WorkflowEngineMessage.message" in p and "SendSignal" in p for p in found)


def test_widening_int_to_long_is_compatible(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    _edit(root, "TaskCompleted", _retype("attempts", "long"))
    assert evolution.problems(CURRENT.named, schemas.load_folder(root)) == []
    assert evolution.problems(schemas.load_folder(root), CURRENT.named) != []  # narrowing back is not


def test_unknown_schema_version_is_a_typed_decode_error() -> None:
    from pulsarflow.errors import DecodeError

    data = Codec(FROZEN[0]).encode(RECORD_CLASSES["pulsarflow.TaskCompleted"](1, b"x", 2))
    assert CURRENT.decode_version("TaskCompleted", data, "0.1.0").attempts == 2
    known = r"\(known: \['0.1.0', '0.2.0', .*\]\)"
    with pytest.raises(DecodeError, match=rf"unknown schema version '7.0.0' {known}") as info:
        CURRENT.decode_version("TaskCompleted", data, "7.0.0")
    assert info.value.size == len(data)


def test_state_from_a_newer_release_is_dead_lettered_not_misread() -> None:
    from pulsarflow.messages import StartWorkflow, WorkflowEngineMessage, WorkflowState
    from pulsarflow.testing import TestEnvironment

    env = TestEnvironment(fail_fast=False)
    future = WorkflowState("w", "n", b"[]", "RUNNING", 0, schema_version=99)
    env.store.put("w", env.codec.encode(future), 0)
    env.transport.send(env.topics.workflow_engine, "w",
                       env.codec.encode(WorkflowEngineMessage("m", "w", 0, StartWorkflow("n", b"[]"))))
    env.run_until_idle()
    [letter] = env.dead_letters
    assert "state layout version 99 is newer" in letter.reason and letter.payload
