"""The release command, run in a clone of this repository."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    target = tmp_path / "repo"
    _git(tmp_path, "clone", "-q", str(ROOT), str(target))
    _git(target, "config", "user.email", "release@example.invalid")
    _git(target, "config", "user.name", "release test")
    return target


def test_a_release_freezes_the_schemas_sets_the_version_and_tags(clone: Path) -> None:
    done = subprocess.run(["bash", "deploy/release.sh", "9.8.7"], cwd=clone, capture_output=True, text=True,
                          env={"PYTHON": sys.executable, "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    frozen = sorted(p.name for p in (clone / "schemas" / "history" / "9.8.7").glob("*.avsc"))
    assert frozen == sorted(p.name for p in (clone / "schemas").glob("*.avsc"))
    assert 'version="9.8.7"' in (clone / "setup.py").read_text()
    assert '__version__ = "9.8.7"' in (clone / "pulsarflow" / "__init__.py").read_text()
    assert _git(clone, "tag", "--list", "v9.8.7").strip() == "v9.8.7"
    again = subprocess.run(["bash", "deploy/release.sh", "9.8.7"], cwd=clone, capture_output=True, text=True,
                           env={"PYTHON": sys.executable, "PATH": "/usr/bin:/bin"})
    assert again.returncode == 2 and "was released" in again.stderr
