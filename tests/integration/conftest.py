"""Integration fixtures: a real standalone Pulsar (started by .ci/run or deploy/pulsar-standalone.sh).

Locally these tests skip when no server answers; under CI=true a missing server fails them.
The admin and the clients built here use ``ConnectionConfig.load()``: the local standalone by
default, another cluster (its credentials and CA included) with ``PULSAR_CLIENT_CONF`` or
the ``PULSAR_*`` variables (tests that build their own ``pulsar.Client`` use SERVICE_URL only).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from pulsarflow.pulsar.connection import ConnectionConfig

CONNECTION = ConnectionConfig.load()
ADMIN_URL = CONNECTION.require_admin_url()
SERVICE_URL = CONNECTION.require_service_url()


def _pulsar_up() -> bool:
    try:
        session = CONNECTION.http_session()
        try:
            return bool(session.get(f"{ADMIN_URL}/admin/v2/clusters", timeout=3).status_code == 200)
        finally:
            session.close()
    except Exception:
        return False


@pytest.fixture(scope="session")
def pulsar_admin():  # type: ignore[no-untyped-def]
    if not _pulsar_up():
        message = f"no Pulsar admin at {ADMIN_URL} (start one: deploy/pulsar-standalone.sh start)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from pulsarflow.deploy.admin import PulsarAdmin

    return PulsarAdmin(CONNECTION)


@pytest.fixture(scope="session")
def deployment(pulsar_admin, tmp_path_factory):  # type: ignore[no-untyped-def]
    """The engines deployed as Pulsar Functions under a fresh app name, removed afterwards."""
    from pulsarflow.deploy import manifest as mf
    from pulsarflow.deploy import tool

    app = f"it{uuid.uuid4().hex[:6]}"
    manifest = mf.parse({
        "app": app, "modules": ["tests.e2e.flows", "tests.e2e.schedule_flows"],
        "bundle_library": os.environ.get("PULSARFLOW_BUNDLE", "0") == "1",
        "functions": [
            {"name": f"{app}-workflow-engine", "engine": "workflow"},
            {"name": f"{app}-tag-engine", "engine": "tag"},
            {"name": f"{app}-executor-default", "engine": "executor", "service": "default"},
            {"name": f"{app}-executor-geometry", "engine": "executor", "service": "geometry"},
        ],
    })
    out: Path = tmp_path_factory.mktemp("deploy")
    report = tool.apply(pulsar_admin, manifest, out)
    yield manifest, report, out
    for spec in manifest.functions:
        pulsar_admin.delete_function(manifest.topics.tenant, manifest.topics.namespace, spec.name)


@contextmanager
def connected(topics: Any, modules: tuple[str, ...] = ("tests.e2e.flows",)) -> Iterator[Any]:
    """A pulsarflow client over Pulsar for the app of ``topics``, closed afterwards."""
    from pulsarflow.pulsar.worker import connect

    client = connect(CONNECTION, modules=list(modules), topics=topics)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="session")
def client(deployment):  # type: ignore[no-untyped-def]
    """A client of the shared ``deployment``."""
    manifest, _, _ = deployment
    with connected(manifest.topics) as shared:
        yield shared


@contextmanager
def deployed_app(admin: Any, out: Path, modules: list[str], functions: list[dict[str, Any]],
                 bundle_library: bool = False, prefix: str = "it") -> Iterator[Any]:
    """Deploy ``functions`` (manifest entries; ``{app}`` in a name is replaced) under a fresh app name.

    Yields the manifest; every function is deleted afterwards, also when the body fails.
    """
    from pulsarflow.deploy import manifest as mf
    from pulsarflow.deploy import tool

    app = f"{prefix}{uuid.uuid4().hex[:6]}"
    entries = [{**f, "name": f["name"].format(app=app)} for f in functions]
    manifest = mf.parse({"app": app, "modules": modules, "bundle_library": bundle_library, "functions": entries})
    try:
        tool.apply(admin, manifest, out)
        yield manifest
    finally:
        for spec in manifest.functions:
            admin.delete_function(manifest.topics.tenant, manifest.topics.namespace, spec.name)


def instance_pids(function_name: str) -> list[int]:
    """Pids of the Python instance processes of one function (found by their command line)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(a.endswith(b"python_instance_main.py") for a in args) and \
                _option(args, b"--logging_file") == function_name.encode():
            pids.append(int(entry.name))
    return pids


def _option(args: list[bytes], name: bytes) -> bytes | None:
    return args[args.index(name) + 1] if name in args[:-1] else None


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
