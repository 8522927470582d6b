"""Versioning: patch markers keep running instances on their path; the replay check finds breaking changes."""

from __future__ import annotations

from pathlib import Path

import pytest

from pulsarflow.cli import main as cli
from pulsarflow.testing import TestEnvironment
from tests.e2e import flows
from tests.e2e.versions import v1, v2, v3, v4


@pytest.fixture(params=[False, True], ids=["once", "twice"])
def duplicate(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


def test_a_patched_change_keeps_running_instances_on_the_old_path(duplicate: bool) -> None:
    first = TestEnvironment(v1.shipping, flows.add, duplicate_messages=duplicate)
    first.client().start("shipping", id="old-1")
    first.run_ready()  # old-1 now waits for "go", with the v1 history
    second = TestEnvironment(v2.shipping, flows.add, store=first.store, duplicate_messages=duplicate)
    client = second.client()
    client.signal("old-1", "go")
    assert client.get_handle("old-1").result() == "old path"
    new = client.start("shipping", id="new-2")
    second.run_ready()
    client.signal("new-2", "go")
    assert new.result() == "new path"
    state = second.state("new-2")
    assert state is not None and [c.kind for c in state.commands][:3] == ["TASK", "PATCH", "TASK"]


def test_replay_check_reports_the_first_diverging_step() -> None:
    env = TestEnvironment(v1.shipping, flows.add)
    env.client().start("shipping", id="running-1")
    env.run_ready()
    [safe] = env.replay_check(["running-1"], v2.shipping, flows.add)
    assert safe.ok, safe.detail
    [broken] = env.replay_check(["running-1"], v3.shipping, flows.add)
    assert not broken.ok and broken.position == 1
    assert broken.detail == "step 1: history has signal 'go', code now issues task 'add'"


def test_deprecated_patch_replays_histories_that_took_the_new_path() -> None:
    env = TestEnvironment(v2.shipping, flows.add)
    env.client().start("shipping", id="patched-1")
    env.run_ready()
    [result] = env.replay_check(["patched-1"], v4.shipping, flows.add)
    assert result.ok, result.detail
    [old] = env.replay_check(["patched-1"], v1.shipping, flows.add)
    assert not old.ok and "history has patch 'double-check'" in old.detail


def test_replay_check_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = TestEnvironment(v1.shipping, flows.add)
    client = env.client()
    client.start("shipping", id="done-1")
    env.run_ready()
    client.signal("done-1", "go")
    assert client.get_handle("done-1").result() == "old path"
    client.start("shipping", id="waiting-1")
    env.run_ready()
    for workflow_id in ("done-1", "waiting-1"):
        env.save_history(workflow_id, tmp_path)
    assert cli(["replay", "check", "--modules", "tests.e2e.versions.v2", str(tmp_path)]) == 0
    assert "2 histories, 0 diverging" in capsys.readouterr().out
    assert cli(["replay", "check", "--modules", "tests.e2e.versions.v3", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "DIVERGES shipping waiting-1: step 1: history has signal 'go', code now issues task 'add'" in out
    assert "2 histories, 2 diverging" in out
    (tmp_path / "junk.wfstate").write_bytes(b"\x01\x02")
    assert cli(["replay", "check", "--modules", "tests.e2e.versions.v2", str(tmp_path)]) == 2
    assert "junk.wfstate" in capsys.readouterr().err
