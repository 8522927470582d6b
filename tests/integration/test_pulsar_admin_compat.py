"""The generated YAML works with the distribution's own pulsar-admin (``--function-config-file``, ``--py``).

An app made by ``pulsarflow init`` is built with ``pulsarflow deploy apply --dry-run``; its
workflow engine is created by ``bin/pulsar-admin functions create`` from the written YAML
and package, the two other functions through the REST API, and a workflow runs through them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from pulsarflow import scaffold
from pulsarflow.deploy import manifest as mf
from pulsarflow.deploy import tool

from .conftest import SERVICE_URL

pytestmark = pytest.mark.pulsar


def _pulsar_admin() -> Path:
    dist = os.environ.get("PULSAR_DIST", "")
    tool_path = Path(dist) / "bin" / "pulsar-admin"
    if not dist or not tool_path.is_file():
        message = f"PULSAR_DIST ({dist!r}) holds no bin/pulsar-admin: point it at the unpacked distribution"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return tool_path


def test_pulsar_admin_deploys_the_generated_yaml_and_a_workflow_runs(pulsar_admin, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    admin_tool = _pulsar_admin()
    folder = tmp_path / f"pac{uuid.uuid4().hex[:6]}"
    scaffold.init(folder)
    manifest_path = folder / "functions.yaml"
    # The functions worker's python3 has pulsarflow (deploy/pulsar-standalone.sh): no bundle, a faster start.
    manifest_path.write_text(manifest_path.read_text().replace("bundle_library: true", "bundle_library: false"))
    built = subprocess.run([sys.executable, "-m", "pulsarflow.cli", "deploy", "apply", "--dry-run"], cwd=folder,
                           capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, built.stderr
    manifest = mf.load(manifest_path)
    out = folder / "deploy" / "generated"
    t = manifest.topics
    try:
        engine = f"{t.app}-workflow-engine"
        created = subprocess.run([str(admin_tool), "functions", "create", "--function-config-file",
                                  str(out / f"{engine}.yaml"), "--py", str(out / f"{engine}.zip")],
                                 capture_output=True, text=True, timeout=120)
        assert created.returncode == 0 and "Created successfully" in created.stdout, created.stdout + created.stderr
        deployed = pulsar_admin.function(t.tenant, t.namespace, engine)
        assert deployed["retainKeyOrdering"] is True and deployed["userConfig"]["engine"] == "workflow"
        for item in tool.build_all(manifest, out):
            if item.spec.name != engine:
                pulsar_admin.create_or_update(item.config, item.package)
        ran = subprocess.run([sys.executable, "-m", f"{t.app}.run", "Pulsar", "--pulsar", SERVICE_URL], cwd=folder,
                             capture_output=True, text=True, timeout=180)
        assert ran.stdout.strip().splitlines()[-1:] == ["HELLO, PULSAR!"], ran.stdout + ran.stderr[-2000:]
    finally:
        for spec in manifest.functions:
            pulsar_admin.delete_function(t.tenant, t.namespace, spec.name)
