"""Packaging for deploys: the bundled library brings the dependencies its state backend needs."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from pulsarflow.deploy import package
from pulsarflow.errors import DefinitionError


@pytest.mark.parametrize("extras,spec_suffix", [((), ""), (("redis",), "[redis]")])
def test_the_wheel_build_asks_for_the_extras(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             extras: tuple[str, ...], spec_suffix: str) -> None:
    commands: list[list[str]] = []

    def fake_run(command: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        commands.append(command)
        (tmp_path / "wheels" / "pulsarflow-0.1.0-py3-none-any.whl").write_bytes(b"")
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr("pulsarflow.deploy.package.subprocess.run", fake_run)
    wheels = package.library_wheels(tmp_path / "wheels", extras)
    [command] = commands
    assert command[-1].endswith(spec_suffix) and Path(command[-1].removesuffix(spec_suffix)).name.startswith("tmp")
    assert [w.name for w in wheels] == ["pulsarflow-0.1.0-py3-none-any.whl"]


def test_a_failed_build_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("pulsarflow.deploy.package.subprocess.run", lambda command, **_: subprocess.CompletedProcess(
        command, 1, "", "ERROR: Could not find a version that satisfies the requirement redis>=5"))
    with pytest.raises(DefinitionError, match="(?s)needs the package index.*redis>=5"):
        package.library_wheels(tmp_path / "wheels", ("redis",))
