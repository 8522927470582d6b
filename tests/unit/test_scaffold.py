"""``pulsarflow init``: a new app that runs, tests and deploys as generated."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pulsarflow import cli, scaffold
from pulsarflow.deploy import manifest as mf
from pulsarflow.deploy import tool
from pulsarflow.errors import DefinitionError


def test_init_writes_an_app_whose_own_test_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["init", str(tmp_path / "Shop Front")]) == 0
    app = tmp_path / "Shop Front"
    written = sorted(str(p.relative_to(app)) for p in app.rglob("*") if p.is_file())
    assert written == [".gitignore", "README.md", "functions.yaml", "shop_front/__init__.py", "shop_front/flows.py",
                       "shop_front/run.py", "tests/test_flows.py"]
    assert "python -m shop_front.run" in capsys.readouterr().out
    readme = (app / "README.md").read_text()
    for command in ("python -m shop_front.run", "python -m pytest -q", "pulsarflow deploy apply"):
        assert command in readme
    manifest = mf.load(app / "functions.yaml")
    assert manifest.topics.app == "shop-front" and manifest.modules == ["shop_front.flows"]
    assert {f.engine for f in manifest.functions} == {"workflow", "tag", "executor"}
    tested = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=app,
                            capture_output=True, text=True, timeout=120)
    assert tested.returncode == 0 and "2 passed" in tested.stdout, tested.stdout + tested.stderr
    ran = subprocess.run([sys.executable, "-m", "shop_front.run", "Ada"], cwd=app, capture_output=True, text=True,
                         timeout=60)
    assert ran.stdout.strip() == "HELLO, ADA!", ran.stderr


def test_init_never_overwrites(tmp_path: Path) -> None:
    (tmp_path / "functions.yaml").write_text("mine\n")
    with pytest.raises(DefinitionError, match="functions.yaml exist"):
        scaffold.init(tmp_path)
    assert (tmp_path / "functions.yaml").read_text() == "mine\n" and not (tmp_path / "README.md").exists()


@pytest.mark.parametrize("folder,app,package", [("orders", "orders", "orders"), ("My_App 2", "my-app-2", "my_app_2"),
                                                ("class", "class", "class_app")])
def test_names_from_the_folder(tmp_path: Path, folder: str, app: str, package: str) -> None:
    assert scaffold.names_for(tmp_path / folder) == (app, package)


def test_a_name_that_cannot_be_an_app_asks_for_one(tmp_path: Path) -> None:
    with pytest.raises(DefinitionError, match="--app NAME"):
        scaffold.names_for(tmp_path / "123")


def test_the_generated_manifest_passes_the_dry_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scaffold.init(tmp_path / "dry")
    manifest_path = tmp_path / "dry" / "functions.yaml"
    manifest_path.write_text(manifest_path.read_text().replace("bundle_library: true", "bundle_library: false"))
    monkeypatch.syspath_prepend(str(tmp_path / "dry"))
    lines = tool.dry_run(mf.load(manifest_path), tmp_path / "out", [tmp_path / "dry"])
    assert "modules: dry.flows load; task services ['default'] have executors" in lines
    assert sum(line.startswith("would create or update public/default/dry-") for line in lines) == 3
