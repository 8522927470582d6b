"""Packaging for a deploy from any folder: entry points, user modules, secrets, contacting nothing."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from pulsarflow import cli
from pulsarflow.deploy import gate, package, tool
from pulsarflow.deploy import manifest as mf
from pulsarflow.errors import DefinitionError

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "hunter2-s3cret"
FLOWS = "import pulsarflow as pf\n\n@pf.task\ndef double(x: int) -> int:\n    return 2 * x\n"


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An app outside the checkout: a package of its own and a manifest, state in Redis behind ${VAR}."""
    folder = tmp_path / "elsewhere"
    (folder / "pkgapp").mkdir(parents=True)
    (folder / "pkgapp" / "__init__.py").write_text("")
    (folder / "pkgapp" / "flows.py").write_text(FLOWS)
    (folder / "functions.yaml").write_text(
        "app: pkgapp\nmodules: [pkgapp.flows]\nbundle_library: false\nstate: redis\n"
        "redis_url: ${PKGAPP_REDIS}\nfunctions:\n  - {name: pkgapp-wf, engine: workflow}\n"
        "  - {name: pkgapp-ex, engine: executor, service: default}\n")
    monkeypatch.setenv("PKGAPP_REDIS", f"redis://app:{PASSWORD}@cache:6379/0")
    monkeypatch.chdir(tmp_path)
    return folder


def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    import requests

    def refuse(*_: Any, **__: Any) -> Any:
        raise AssertionError("the dry run contacted a server")

    monkeypatch.setattr(requests.Session, "request", refuse)
    monkeypatch.setattr(tool, "PulsarAdmin", refuse)


def test_dry_run_from_another_folder_builds_everything_contacts_nothing_and_prints_no_secret(
        app: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _no_network(monkeypatch)
    assert cli.main(["deploy", "apply", "--dry-run", "--manifest", str(app / "functions.yaml")]) == 0
    out = capsys.readouterr().out
    generated = app / "deploy" / "generated"
    assert "would create or update public/default/pkgapp-wf (workflow, parallelism 1)" in out
    assert "would upload WorkflowEngineMessage to persistent://public/default/pkgapp-workflow-engine" in out
    assert "with pulsar-admin add --secrets" in out and PASSWORD not in out
    with zipfile.ZipFile(generated / "pkgapp-wf.zip") as built:
        assert {"pkgapp-wf/src/workflow_engine.py", "pkgapp-wf/src/pkgapp/flows.py"} <= set(built.namelist())
    assert (generated / ".gitignore").read_text().splitlines()[-1] == "*"
    for path in generated.glob("*.yaml"):
        text = path.read_text()
        assert PASSWORD not in text and "redis_url" not in yaml.safe_load(text)["userConfig"]


def test_the_redis_url_travels_only_as_a_function_secret(app: Path) -> None:
    manifest = mf.load(app / "functions.yaml")
    engine, executor = (mf.function_config(manifest, spec, "p.zip") for spec in manifest.functions)
    assert engine["secrets"] == {"redis_url": f"redis://app:{PASSWORD}@cache:6379/0"}
    assert "redis_url" not in engine["userConfig"] and "secrets" not in executor
    assert PASSWORD not in repr(manifest)
    assert "secrets" not in mf.redacted(engine)[0] and mf.redacted(engine)[1] == ["redis_url"]
    named = mf.parse({"state": "redis", "redis_url_secret": {"path": "shop-redis", "key": "url"},
                      "functions": [{"engine": "workflow"}]})
    config = mf.function_config(named, named.functions[0], "p.zip")
    assert mf.redacted(config)[0]["secrets"] == {"redis_url": {"path": "shop-redis", "key": "url"}}


def test_an_unset_variable_and_a_url_in_a_function_config_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    with pytest.raises(DefinitionError, match=r"NOT_SET_ANYWHERE is not set; export NOT_SET_ANYWHERE="):
        mf.parse({"state": "redis", "redis_url": "${NOT_SET_ANYWHERE}"})
    with pytest.raises(DefinitionError, match=r"config.redis_url would reach the function in clear"):
        mf.parse({"state": "redis", "redis_url_secret": "r",
                  "functions": [{"engine": "workflow", "config": {"redis_url": "redis://x"}}]})


def test_a_missing_module_names_itself_and_where_it_was_looked_for(tmp_path: Path) -> None:
    with pytest.raises(DefinitionError) as missing:
        package.build(tmp_path / "out", "f", "task_executor", ["nowhere_app.flows"], paths=[tmp_path])
    message = str(missing.value)
    assert "'nowhere_app.flows' not found" in message and str(tmp_path) in message and "--path DIR" in message


def test_a_task_service_without_an_executor_is_caught_before_deploying(app: Path) -> None:
    manifest = mf.parse({"modules": ["pkgapp.flows"], "functions": [{"engine": "workflow"}]})
    sys.path.insert(0, str(app))
    try:
        with pytest.raises(DefinitionError, match="service.s. default have no executor"):
            tool.service_check(manifest, gate.new_code(manifest.modules))
    finally:
        sys.path.remove(str(app))


def test_the_wheel_carries_the_entry_points_and_the_templates(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    for item in (*package.SOURCE_ITEMS, "MANIFEST.in"):
        if (ROOT / item).is_dir():
            shutil.copytree(ROOT / item, source / item, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / item, source / item)
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                           "--disable-pip-version-check", "-w", str(tmp_path / "dist"), str(source)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    [wheel] = (tmp_path / "dist").glob("pulsarflow-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"pulsarflow/_functions/{p.name}" for p in (ROOT / "functions").glob("*.py")} <= names
    assert "pulsarflow/templates/app/functions.yaml.tmpl" in names
    assert "pulsarflow/templates/app/package/flows.py.tmpl" in names
