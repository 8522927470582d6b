"""On a standalone with token authentication, authorization and TLS (deploy/pulsar-secured.sh).

The session fixture starts it when it is not running (and stops it afterwards); it skips
locally when it cannot start, and fails under CI=true. Roles: admin (super-user), client,
executor, engine, nobody (no permission); expired and forged tokens beside them.
"""

from __future__ import annotations

import functools
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulsar
import pytest

from pulsarflow.codec import Codec
from pulsarflow.deploy.admin import PulsarAdmin
from pulsarflow.deploy.permissions import Roles, grant_permissions
from pulsarflow.pulsar.connection import ConnectionConfig, PulsarAccessError, from_client_conf
from pulsarflow.pulsar.connection_check import check
from pulsarflow.pulsar.connection_errors import explain_client
from pulsarflow.topics import Topics

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "pulsar-secured.sh"
HOME = Path(os.environ.get("PULSAR_SECURED_DIR", Path.home() / ".cache" / "pulsarflow" / "pulsar-secured"))
BROKER = "pulsar+ssl://127.0.0.1:6661"
ADMIN = "https://127.0.0.1:8453"
FAST = 8.0  # seconds: a refusal must be this quick (no hang)


@dataclass(frozen=True)
class Secured:
    home: Path

    @property
    def ca(self) -> str:
        return str(self.home / "certs" / "ca.cert.pem")

    def config(self, token: str | None = None, **overrides: Any) -> ConnectionConfig:
        settings: dict[str, Any] = {"service_url": BROKER, "admin_url": ADMIN, "tls_trust_certs": self.ca,
                                    "tls_hostname_verification": True, **overrides}
        token_file = str(self.home / "tokens" / f"{token}.token") if token else None
        return ConnectionConfig.load(env={}, auth_token_file=token_file, **settings)

    def admin(self) -> PulsarAdmin:
        return PulsarAdmin(from_client_conf(self.home / "client.conf"), timeout=15)


def _script(command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SCRIPT), command], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="session")
def secured() -> Iterator[Secured]:
    started = False
    if _script("status").returncode != 0:
        result = _script("start")
        if result.returncode != 0:
            message = f"the secured standalone did not start: {result.stderr[-1500:]}"
            if os.environ.get("CI") == "true":
                pytest.fail(message)
            pytest.skip(message)
        started = True
    try:
        yield Secured(HOME)
    finally:
        if started:
            _script("stop")


def timed(call: Callable[[], Any]) -> tuple[BaseException | None, float]:
    began = time.monotonic()
    try:
        call()
    except BaseException as exc:
        return exc, time.monotonic() - began
    return None, time.monotonic() - began


def produce(config: ConnectionConfig, topic: str, data: bytes = b"x") -> None:
    """One message to ``topic``; a refusal becomes the one-line PulsarAccessError."""
    client = config.client(operation_timeout_seconds=5, connection_timeout_ms=5000)
    try:
        client.create_producer(topic).send(data)
    except PulsarAccessError:
        raise
    except Exception as exc:
        raise (explain_client(config, exc, what=f"produce to {topic}") or exc) from exc
    finally:
        client.close()


def consume_one(config: ConnectionConfig, topic: str, then: Callable[[], None]) -> bytes:
    client = config.client(operation_timeout_seconds=5, connection_timeout_ms=5000)
    try:
        try:
            consumer = client.subscribe(topic, f"sub-{uuid.uuid4().hex[:6]}")
        except Exception as exc:
            raise (explain_client(config, exc, what=f"consume {topic}") or exc) from exc
        then()
        return bytes(consumer.receive(timeout_millis=10_000).data())
    finally:
        client.close()


def test_check_accepts_a_token_and_names_what_is_wrong_in_one_line(secured: Secured) -> None:
    assert check(secured.config("client"))[-1] == "broker accepted the credentials of role 'client'"
    assert "admin API" in " ".join(check(from_client_conf(secured.home / "client.conf")))
    cases = {
        "expired": (secured.config("expired"), r"the token \(--auth-token-file\) expired at"),
        "forged": (secured.config("forged"), r"refused the credentials .* not signed by this cluster's key"),
        "no token": (secured.config(), r"requires authentication and none is configured: set authPlugin"),
        "other CA": (secured.config("client", tls_trust_certs=str(secured.home / "certs" / "other-ca.cert.pem")),
                     r"not signed by a CA in .*other-ca.cert.pem.*fix tlsTrustCertsFilePath \(from --tls-trust"),
        "plain URL": (secured.config("client", service_url="pulsar://127.0.0.1:6661"),
                      r"speaks TLS but brokerServiceUrl is pulsar://127.0.0.1:6661: use pulsar\+ssl://"),
    }
    for label, (config, message) in cases.items():
        error, seconds = timed(functools.partial(check, config, timeout_s=5))
        assert isinstance(error, PulsarAccessError), (label, error)
        assert "\n" not in str(error) and seconds < FAST, (label, seconds)
        assert __import__("re").search(message, str(error)), (label, str(error))


def test_produce_and_consume_with_a_token_and_refusals_without_one(secured: Secured) -> None:
    topic = f"persistent://public/default/sec-{uuid.uuid4().hex[:8]}"
    admin_config = from_client_conf(secured.home / "client.conf")
    got = consume_one(admin_config, topic, lambda: produce(admin_config, topic, b"over TLS with a token"))
    assert got == b"over TLS with a token"
    for token, message in ((None, "requires authentication"), ("nobody", "role 'nobody' may not produce to"),
                           ("forged", "refused the credentials")):
        error, seconds = timed(functools.partial(produce, secured.config(token, admin_url=None), topic))
        assert isinstance(error, PulsarAccessError) and message in str(error), (token, error)
        assert seconds < FAST, (token, seconds)


def test_admin_calls_say_who_may_not_do_what(secured: Secured) -> None:
    topic = f"persistent://public/default/sec-{uuid.uuid4().hex[:8]}"
    with pytest.raises(PulsarAccessError, match=r"role 'nobody' may not PUT v2/persistent/public/default/sec-"):
        PulsarAdmin(secured.config("nobody"), timeout=10).create_topic(topic)
    with pytest.raises(PulsarAccessError, match=r"admin API at https://127.0.0.1:8453 requires authentication"):
        PulsarAdmin(secured.config(), timeout=10).create_topic(topic)
    secured.admin().create_topic(topic)
    assert secured.admin().topic_exists(topic)


def test_least_privilege_for_a_client_role(secured: Secured) -> None:
    topics = Topics(app=f"lp{uuid.uuid4().hex[:6]}")
    done = grant_permissions(secured.admin(), topics, Roles(clients={"client": "web"}, engines=["engine"],
                                                             executors={"executor": ["default"]}))
    assert f"{topics.workflow_engine}: client may produce" in done
    client = secured.config("client", admin_url=None)
    produce(client, topics.workflow_engine)
    produce(client, topics.tag_engine)
    own = consume_one(client, topics.client("web"),
                      lambda: produce(secured.config("engine", admin_url=None), topics.client("web"), b"an answer"))
    assert own == b"an answer"
    for forbidden in (topics.executor("default"), topics.dead_letters, topics.events):
        with pytest.raises(PulsarAccessError, match=r"role 'client' may not produce to"):
            produce(client, forbidden)
    with pytest.raises(PulsarAccessError, match=r"role 'client' may not consume"):
        consume_one(client, topics.client("someone-else"), lambda: None)
    with pytest.raises(PulsarAccessError, match=r"role 'executor' may not produce to"):
        produce(secured.config("executor", admin_url=None), topics.tag_engine)


def test_a_workflow_runs_with_each_part_under_its_own_role(secured: Secured) -> None:
    """Engines (role engine), an executor (role executor) and a client (role client) over TLS with tokens."""
    from pulsarflow.pulsar.engine_worker import serve
    from pulsarflow.pulsar.function import build_handler
    from pulsarflow.pulsar.worker import PulsarConnection
    from pulsarflow.runtime.batch import BatchHandler
    from pulsarflow.sdk.client import Client
    from pulsarflow.storage.memory import InMemoryStateStore
    from tests.e2e import flows

    topics = Topics(app=f"wf{uuid.uuid4().hex[:6]}")
    grant_permissions(secured.admin(), topics, Roles(clients={"client": "wf"}, executors={"executor": ["default"]},
                                                     engines=["engine"]))
    stop = threading.Event()
    clients: list[Any] = []

    def engine(kind: str, role: str, sources: list[str], shared: bool) -> None:
        client = secured.config(role, admin_url=None).client()
        clients.append(client)
        config = {"engine": kind, "modules": "tests.e2e.flows", "app": topics.app, "events": "off"}
        handler = build_handler(config, client, InMemoryStateStore() if kind != "executor" else None)
        kind_of = pulsar.ConsumerType.Shared if shared else pulsar.ConsumerType.KeyShared
        consumer = client.subscribe(sources, topics.subscription(kind), consumer_type=kind_of,
                                    initial_position=pulsar.InitialPosition.Earliest)
        serve(consumer, BatchHandler(handler), stop, 50)

    threads = [threading.Thread(target=engine, args=args, daemon=True) for args in (
        ("workflow", "engine", [topics.workflow_engine], False), ("tag", "engine", [topics.tag_engine], False),
        ("executor", "executor", [topics.executor("default")], True))]
    for thread in threads:
        thread.start()
    pulsar_client = secured.config("client", admin_url=None).client()
    try:
        client = Client(PulsarConnection(pulsar_client), Codec(), topics, client_id="wf")
        handle = client.start(flows.sequence, 3, id=f"secured-{uuid.uuid4().hex[:6]}")
        assert handle.result(timeout=60) == 0 + 1 + 2
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=15)
        pulsar_client.close()
        for made in clients:
            made.close()



def test_the_cli_grants_permissions_and_checks_a_role_with_one_connection(secured: Secured, tmp_path: Path) -> None:
    """``pulsarflow deploy permissions`` as the admin (its client.conf), then ``pulsarflow check`` as the client."""
    import sys

    app = f"cli{uuid.uuid4().hex[:6]}"
    topics = Topics(app=app)
    (tmp_path / "functions.yaml").write_text(f"app: {app}\nfunctions: [{{engine: workflow}}]\n")

    def pulsarflow(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "pulsarflow.cli", *argv], cwd=tmp_path, capture_output=True,
                              text=True, timeout=120, env={**os.environ, "PULSAR_CLIENT_CONF": ""})

    granted = pulsarflow("deploy", "permissions", "--client-conf", str(secured.home / "client.conf"),
                         "--client", "client=web", "--engine", "engine")
    assert granted.returncode == 0, granted.stderr
    assert f"{topics.workflow_engine}: client may produce" in granted.stdout.splitlines()
    as_client = ["--client-conf", str(secured.home / "client.conf"),
                 "--auth-token-file", str(secured.home / "tokens" / "client.token")]
    ok = pulsarflow("check", *as_client, "--topic", topics.workflow_engine, "--topic", topics.client("web"))
    assert ok.returncode == 0, ok.stderr
    assert "broker accepted the credentials of role 'client'" in ok.stdout
    refused = pulsarflow("check", *as_client, "--topic", topics.executor("default"))
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1, refused.stderr
    assert "role 'client' may not use" in refused.stderr and "Traceback" not in refused.stderr
