"""The app deployed as Pulsar Functions on the secured standalone (token auth, authorization, TLS).

``pulsarflow deploy apply`` runs as the admin (the standalone's client.conf: TLS URLs, CA,
token file); the functions worker runs the engines and the executor with its own token
(role worker) over TLS; the engines keep their state in Redis (function state has no
table service there, see deploy/pulsar-secured.sh). A client holding the client role's
token, granted only its topics, starts workflows, signals one and gets the results.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pulsarflow.codec import Codec
from pulsarflow.pulsar.connection import PulsarAccessError
from pulsarflow.storage.redis import RedisStateStore, key_prefix
from pulsarflow.topics import Topics
from tests.e2e import flows
from tests.integration.test_security_pulsar import Secured, produce, secured  # noqa: F401 (the fixture)
from tests.redis.support import require_redis

pytestmark = [pytest.mark.pulsar, pytest.mark.redis]
ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "fn"  # a namespace of its own: the deploy enforces schemas on it
TIMEOUT = 150  # the first workflow waits for the instances to start, on a busy 2-core machine


@dataclass(frozen=True)
class Deployed:
    topics: Topics
    folder: Path
    redis_url: str
    applied: subprocess.CompletedProcess[str]


def pulsarflow(folder: Path, redis_url: str, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PULSAR_CLIENT_CONF": "", "PULSARFLOW_REDIS_URL": redis_url}
    return subprocess.run([sys.executable, "-m", "pulsarflow.cli", *argv], cwd=folder, capture_output=True,
                          text=True, timeout=240, env=env)


@pytest.fixture(scope="module")
def deployed(secured: Secured, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:  # noqa: F811
    redis_url = require_redis()
    app = f"sf{uuid.uuid4().hex[:6]}"
    topics = Topics(tenant="public", namespace=NAMESPACE, app=app)
    folder = tmp_path_factory.mktemp("secured-app")
    # The URL is read from the environment: the manifest holds no secret.
    (folder / "functions.yaml").write_text(
        f"tenant: public\nnamespace: {NAMESPACE}\napp: {app}\nmodules: [tests.e2e.flows]\n"
        "state: redis\nredis_url: ${PULSARFLOW_REDIS_URL}\nbundle_library: false\nfunctions:\n"
        f"  - {{name: {app}-workflow-engine, engine: workflow}}\n"
        f"  - {{name: {app}-tag-engine, engine: tag}}\n"
        f"  - {{name: {app}-executor-default, engine: executor, service: default}}\n")
    secured.admin()._call("PUT", f"/admin/v2/namespaces/public/{NAMESPACE}", ok=(200, 204, 409))
    as_admin = ("--path", str(ROOT), "--client-conf", str(secured.home / "client.conf"))
    applied = pulsarflow(folder, redis_url, "deploy", "apply", *as_admin)
    try:
        yield Deployed(topics, folder, redis_url, applied)
    finally:
        pulsarflow(folder, redis_url, "deploy", "delete", *as_admin)
        store = RedisStateStore.from_url(redis_url, prefix=key_prefix(topics))
        for key in store.client.scan_iter(match=store.prefix + "*"):
            store.client.delete(key)


def test_deploy_apply_with_token_and_tls_deploys_every_function(deployed: Deployed) -> None:
    applied = deployed.applied
    assert applied.returncode == 0, applied.stderr[-2000:]
    for kind in ("workflow-engine", "tag-engine", "executor-default"):
        assert f"{deployed.topics.app}-{kind}: created" in applied.stdout
    # The Redis URL reached the functions as a secret only: not printed, not in the generated files.
    assert deployed.redis_url not in applied.stdout + applied.stderr
    generated = [path for path in (deployed.folder / "deploy" / "generated").rglob("*.yaml")]
    assert len(generated) == 3
    assert all(deployed.redis_url not in path.read_text() for path in generated)


def test_a_client_with_a_token_starts_and_signals_workflows_on_the_functions(secured: Secured,  # noqa: F811
                                                                              deployed: Deployed) -> None:
    from pulsarflow.pulsar.worker import PulsarConnection
    from pulsarflow.sdk.client import Client

    assert deployed.applied.returncode == 0, deployed.applied.stderr[-2000:]
    client_id = f"c{uuid.uuid4().hex[:6]}"
    granted = pulsarflow(deployed.folder, deployed.redis_url, "deploy", "permissions", "--path", str(ROOT),
                         "--client-conf", str(secured.home / "client.conf"), "--client", f"client={client_id}")
    assert granted.returncode == 0, granted.stderr
    config = secured.config("client", admin_url=None)
    pulsar_client = config.client()
    try:
        client = Client(PulsarConnection(pulsar_client), Codec(), deployed.topics, client_id=client_id)
        assert client.start(flows.sequence, 3, id=f"seq-{uuid.uuid4().hex[:6]}").result(timeout=TIMEOUT) == 3
        waiting = f"approval-{uuid.uuid4().hex[:6]}"
        handle = client.start(flows.approval, 120.0, id=waiting)
        client.signal(waiting, "decision", "yes")
        assert handle.result(timeout=TIMEOUT) == "got yes"
        assert client.start(flows.fan, 4).result(timeout=TIMEOUT) == [0, 2, 4, 6]
    finally:
        pulsar_client.close()
    # The same token may not reach the executor's topic (run a task with arguments of its choosing).
    with pytest.raises(PulsarAccessError, match=r"role 'client' may not produce to"):
        produce(config, deployed.topics.executor("default"))
