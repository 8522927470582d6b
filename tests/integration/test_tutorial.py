"""docs/tutorial.md, followed literally: its ``bash`` blocks run in order in one shell.

A pulsarflow wheel is built from the checkout (``pip wheel --no-deps``) and installed in
place of the package index's; the folder lives outside the checkout, and the app gets a
name of its own (``hello-pulsar`` becomes ``tut<random>``) so that runs never share
functions. Blocks after a ``<!-- tutorial: not run ... -->`` line are skipped (they say why).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

from pulsarflow.deploy import package

pytestmark = pytest.mark.pulsar

ROOT = Path(__file__).resolve().parents[2]
TUTORIAL = ROOT / "docs" / "tutorial.md"
BLOCK = re.compile(r"(<!-- tutorial: not run[^\n]*-->\n)?```(\w+)\n(.*?)```", re.S)


def blocks(kind: str) -> list[str]:
    return [body for skipped, lang, body in BLOCK.findall(TUTORIAL.read_text()) if lang == kind and not skipped]


def build_wheel(target: Path) -> Path:
    source = target / "src"
    source.mkdir(parents=True)
    for item in (*package.SOURCE_ITEMS, "MANIFEST.in"):
        if (ROOT / item).is_dir():
            shutil.copytree(ROOT / item, source / item, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / item, source / item)
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(target / "dist"),
                           str(source)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    [wheel] = (target / "dist").glob("pulsarflow-*.whl")
    return wheel


def test_the_tutorial_runs_as_written(pulsar_admin) -> None:  # type: ignore[no-untyped-def]
    app = f"tut{uuid.uuid4().hex[:6]}"
    script = "\n".join(blocks("bash"))
    assert "pip install -q 'pulsarflow[pulsar]'" in script and "pulsarflow deploy apply\n" in script
    with tempfile.TemporaryDirectory(prefix="pulsarflow-tutorial-") as tmp:
        folder = Path(tmp)
        assert ROOT not in folder.parents
        wheel = build_wheel(folder / "wheel")
        script = script.replace("'pulsarflow[pulsar]'", f"'{wheel}[pulsar]'")
        script = script.replace("hello-pulsar", app).replace("hello_pulsar", app)
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
        try:
            done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=folder, env=env,
                                  capture_output=True, text=True, timeout=600)
            output = done.stdout + done.stderr
            assert done.returncode == 0, output[-4000:]
            generated = (folder / app / app / "flows.py").read_text()
            assert all(block.strip() in generated for block in blocks("python")), "docs show other code"
            assert done.stdout.count("HELLO, WORLD!") == 2 and "2 passed" in done.stdout, output[-4000:]
            assert f"would create or update public/default/{app}-workflow-engine" in done.stdout
            assert f"{app}-workflow-engine: deleted" in done.stdout
        finally:
            for name in ("workflow-engine", "tag-engine", "executor-default"):
                pulsar_admin.delete_function("public", "default", f"{app}-{name}")
