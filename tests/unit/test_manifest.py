"""The project's own functions.yaml: it parses, its modules load, and its configs say what pulsar-admin needs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pulsarflow.deploy import manifest as mf
from pulsarflow.deploy import tool
from pulsarflow.errors import DefinitionError
from pulsarflow.usercode import load_registry

ROOT = Path(__file__).resolve().parents[2]


def test_the_shipped_manifest_deploys_every_engine_batched(tmp_path: Path) -> None:
    manifest = mf.load(ROOT / "functions.yaml")
    assert {f.engine for f in manifest.functions} == {"workflow", "tag", "executor"}
    registry = load_registry(manifest.modules)
    assert registry.services() <= {f.service for f in manifest.functions if f.engine == "executor"}
    written = {p.stem: yaml.safe_load(p.read_text()) for p in tool.write_configs(manifest, tmp_path)}
    engine = written["pulsarflow-workflow-engine"]
    assert engine["autoAck"] is False and engine["userConfig"]["batch"] == 100
    assert engine["retainKeyOrdering"] is True and engine["subName"] == "pulsarflow-workflow"
    assert written["pulsarflow-tag-engine"]["retainKeyOrdering"] is True


def test_batch_of_one_keeps_auto_ack_and_a_bad_batch_is_refused() -> None:
    one = mf.parse({"functions": [{"engine": "workflow", "batch": 1}]})
    assert mf.function_config(one, one.functions[0], "x.zip")["autoAck"] is True
    with pytest.raises(DefinitionError, match=r"functions\[0\].batch must be a whole number >= 1"):
        mf.parse({"functions": [{"engine": "workflow", "batch": 0}]})
