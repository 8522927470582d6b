"""``bundle_library: true``: each function package carries the pulsarflow wheel and its
dependencies' wheels, which the Python Functions runtime installs offline next to the
package; the instances then import that copy, not the one the functions' Python has.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from tests.integration import fault_flows
from tests.integration.conftest import SERVICE_URL, deployed_app

pytestmark = pytest.mark.pulsar
MODULE = "tests.integration.fault_flows"
ROOT = Path(__file__).resolve().parents[2]


def test_a_bundled_deployment_runs_on_its_own_copy_of_the_library(pulsar_admin, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from pulsarflow.pulsar.worker import connect

    functions = [{"name": "{app}-workflow-engine", "engine": "workflow"},
                 {"name": "{app}-executor-faults", "engine": "executor", "service": fault_flows.SERVICE}]
    with deployed_app(pulsar_admin, tmp_path, [MODULE], functions, bundle_library=True, prefix="bnd") as manifest:
        engine, executor = (spec.name for spec in manifest.functions)
        with zipfile.ZipFile(tmp_path / f"{engine}.zip") as package:
            wheels = sorted(Path(n).name.split("-")[0] for n in package.namelist() if n.endswith(".whl"))
        assert wheels == ["fastavro", "pulsarflow"]
        client = connect(SERVICE_URL, modules=[MODULE], topics=manifest.topics)
        try:
            in_engine, in_executor = client.start(fault_flows.locations).result(timeout=180)
        finally:
            client.close()
    t = manifest.topics
    # The runtime installs the wheels into the folder it downloaded the package to.
    assert f"/{t.tenant}/{t.namespace}/{engine}/" in in_engine and not in_engine.startswith(str(ROOT))
    assert f"/{t.tenant}/{t.namespace}/{executor}/" in in_executor and not in_executor.startswith(str(ROOT))
