"""A rolling upgrade on a real standalone: an earlier release, 0.1.0 or 0.2.0 (its own library
bundled in its function packages), runs workflows that sleep on a timer firing after the
upgrade, wait for a signal, are in the middle of a task, and retry a failing task; the current
code is deployed over it while they run; every workflow completes with the right result, a
client of the old release still gets its answers from the new engines, a client of the current
release gets its answers from the old engines before the upgrade, and nothing is dead-lettered."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import wait_for

pytestmark = pytest.mark.pulsar
ROOT = Path(__file__).resolve().parents[2]
UPGRADE = Path(__file__).resolve().parent / "upgrade"
# The releases upgraded from, by commit (a clean checkout may have no tags).
RELEASES = {"0.1.0": "3017bb4c2cc280a96b0fc4cba548b4c1556271ee",  # tag v0.1.0
            "0.2.0": "a7b1a7c90d829cc9443b5c5ddd32971a87b3c16e",  # tag v0.2.0
            "0.3.0": "3f26db29fafee0fc8b38195ac26373484e190d54"}  # tag v0.3.0 (whole states, before history chunks)
# Clients of 0.1.0 publish without a schema, which a namespace with schemaValidationEnforced
# (what `deploy apply` sets by default) refuses: the upgrade runs in a namespace of its own,
# deployed with validation off, as an operator with 0.1.0 clients left would.
NAMESPACE = "pfupgrade"


def old_release(tmp: Path, release: str) -> Path:
    """The sources of an earlier release, from this repository's history."""
    target = tmp / f"pulsarflow-{release}"
    target.mkdir()
    archive = subprocess.run(["git", "archive", RELEASES[release]], cwd=ROOT, capture_output=True)
    if archive.returncode != 0:
        pytest.fail(f"release {release} ({RELEASES[release]}) is not in this checkout's history: clone with full "
                    f"history ({archive.stderr.decode(errors='replace').strip()})")
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target


def step(library: Path, *args: str, state: str = "function") -> dict[str, Any]:
    """One driver step run with the pulsarflow of ``library`` (a source tree) first on the path."""
    env = {**os.environ, "PYTHONPATH": f"{library}{os.pathsep}{UPGRADE}", "UPGRADE_STATE": state,
           "UPGRADE_NAMESPACE": NAMESPACE}
    done = subprocess.run([sys.executable, str(UPGRADE / "driver.py"), *args], env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, f"driver {args[0]} with {library} failed:\n{done.stderr[-3000:]}"
    answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["library"] == str(library / "pulsarflow"), f"{args[0]} ran the wrong library: {answer['library']}"
    return answer


def dead_letters(admin: Any, app: str) -> int:
    """Messages ever published to the app's dead-letter topic (0 when it does not exist)."""
    from pulsarflow.topics import Topics

    topic = Topics(namespace=NAMESPACE, app=app).dead_letters
    response = admin.http.get(f"{admin.url}/admin/v2/persistent/{topic.split('://', 1)[1]}/stats", timeout=30)
    return 0 if response.status_code == 404 else int(response.json().get("msgInCounter", 0))


@pytest.mark.parametrize(("release", "state"), [("0.1.0", "function"), ("0.1.0", "redis"), ("0.2.0", "function"),
                                               ("0.3.0", "function"), ("0.3.0", "redis")])
def test_runs_in_flight_finish_after_the_current_code_is_deployed_over_an_earlier_release(
        pulsar_admin: Any, tmp_path: Path, release: str, state: str) -> None:
    if state == "redis" and not os.environ.get("REDIS_URL"):
        if os.environ.get("CI"):
            pytest.fail("REDIS_URL is not set: .ci/run starts redis-server and sets it")
        pytest.skip("REDIS_URL is not set")
    old = old_release(tmp_path, release)
    created = pulsar_admin.http.put(f"{pulsar_admin.url}/admin/v2/namespaces/public/{NAMESPACE}", timeout=30)
    assert created.status_code in (204, 409), created.text  # 409: made by an earlier run
    app = f"up{uuid.uuid4().hex[:6]}"
    try:
        step(old, "deploy", app, str(tmp_path / "old-deploy"), state=state)
        ids = step(old, "start", app, str(tmp_path), state=state)["ids"]
        wait_for(lambda: (tmp_path / "slow").exists(), 120, f"the slow task to start under {release}")
        wait_for(lambda: (tmp_path / "retries").exists(), 120, f"the first, failing attempt under {release}")
        # a client of the current release talks to the old engines (to 0.1.0 ones as 0.1.0 reads)
        assert step(ROOT, "roundtrip", app, "new-client", state=state)["result"] == "slept"
        report = step(ROOT, "deploy", app, str(tmp_path / "new-deploy"), state=state)["report"]
        stopped = any("run release 0.1.0" in line for line in report)  # all stopped, then updated
        assert stopped == (release == "0.1.0"), report
        step(ROOT, "signal", app, ids["waiter"], state=state)
        results = step(ROOT, "results", app, *ids.values(), state=state)["results"]
        assert results == {ids["sleeper"]: "slept", ids["waiter"]: "got after the upgrade",
                           ids["mid_task"]: "slow done", ids["retrying"]: "ok after 2"}
        # a client of the old release talks to the new engines (they answer 0.1.0 as it reads)
        assert step(old, "roundtrip", app, "old-client", state=state)["result"] == "slept"
        assert dead_letters(pulsar_admin, app) == 0
    finally:
        for engine in ("workflow-engine", "tag-engine", "executor-default"):
            with contextlib.suppress(Exception):  # best effort: it may not have been created
                pulsar_admin.delete_function("public", NAMESPACE, f"{app}-{engine}")
