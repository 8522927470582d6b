"""One connection for every command (client.conf, PULSAR_* variables, flags), ``check`` and ``deploy permissions``."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from pulsarflow import cli
from pulsarflow.pulsar.connection import ConnectionConfig
from pulsarflow.topics import Topics

TOPICS = Topics(app="shop")


@pytest.fixture()
def manifest(tmp_path: Path) -> Path:
    path = tmp_path / "functions.yaml"
    path.write_text("app: shop\nfunctions: [{engine: workflow}]\n")
    return path


@pytest.fixture()
def client_conf(tmp_path: Path) -> Path:
    path = tmp_path / "client.conf"
    path.write_text("brokerServiceUrl=pulsar://broker.example:6650\nwebServiceUrl=http://broker.example:8080\n"
                    "authPlugin=org.apache.pulsar.client.impl.auth.AuthenticationToken\nauthParams=token:abc\n")
    return path


class FakeAdmin:
    made: list[FakeAdmin] = []

    def __init__(self, config: ConnectionConfig) -> None:
        self.config = config
        self.calls: list[tuple[str, ...]] = []
        FakeAdmin.made.append(self)

    def grant_namespace(self, tenant: str, namespace: str, role: str, actions: list[str]) -> None:
        self.calls.append(("namespace", role))

    def create_topic(self, topic: str) -> None:
        self.calls.append(("create", topic))

    def grant_topic(self, topic: str, role: str, actions: list[str]) -> None:
        self.calls.append(("grant", topic, role, ",".join(actions)))


def test_deploy_permissions_grants_each_role_through_the_configured_admin(
        manifest: Path, client_conf: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("pulsarflow.deploy.admin.PulsarAdmin", FakeAdmin)
    FakeAdmin.made.clear()
    assert cli.main(["deploy", "permissions", "--manifest", str(manifest), "--client-conf", str(client_conf),
                     "--client", "web=web-1", "--executor", "pay=payments,refunds", "--engine", "engines",
                     "--reader", "ops"]) == 0
    admin, = FakeAdmin.made
    assert admin.config.admin_url == "http://broker.example:8080" and admin.config.auth.kind == "token"
    assert ("namespace", "engines") in admin.calls
    assert ("grant", TOPICS.client("web-1"), "web", "consume") in admin.calls
    assert ("grant", TOPICS.executor("refunds"), "pay", "consume") in admin.calls
    out = capsys.readouterr().out.splitlines()
    assert "namespace public/default: engines may consume, produce" in out
    assert f"{TOPICS.events}: ops may consume" in out


@pytest.mark.parametrize("roles", [[], ["--client", "web"], ["--executor", "pay="]])
def test_deploy_permissions_without_a_usable_role_is_a_usage_error(
        roles: list[str], manifest: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("pulsarflow.deploy.admin.PulsarAdmin", FakeAdmin)
    try:
        code = cli.main(["deploy", "permissions", "--manifest", str(manifest), *roles])
    except SystemExit as exc:  # argparse refuses a malformed role
        code = int(str(exc.code))
    error = capsys.readouterr().err.splitlines()[-1]  # argparse prints the usage above its own error
    assert code == 2 and "error: " in error and ("ROLE=" in error or "at least one role" in error), error


def test_check_names_the_setting_to_fix_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["check", "--service-url", "pulsar://127.0.0.1:1", "--timeout", "1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot reach the broker at pulsar://127.0.0.1:1") and err.count("\n") == 1
    assert "brokerServiceUrl (from --service-url)" in err


def test_a_bad_client_conf_path_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["check", "--client-conf", str(tmp_path / "absent.conf")]) == 2
    assert "cannot read the client.conf" in capsys.readouterr().err


def test_deploy_and_worker_get_the_whole_connection(manifest: Path, client_conf: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setattr("pulsarflow.deploy.tool.run",
                        lambda action, path, admin, *rest, **kw: seen.update(deploy=admin, live=rest[2]) or 0)
    monkeypatch.setattr("pulsarflow.pulsar.worker.run_worker", lambda config, *rest, **kw: seen.update(worker=config))
    monkeypatch.setattr(signal, "signal", lambda *_: None)
    assert cli.main(["deploy", "status", "--manifest", str(manifest), "--client-conf", str(client_conf)]) == 0
    assert cli.main(["worker", "--modules", "tests.e2e.flows", "--client-conf", str(client_conf),
                     "--service-url", "pulsar://other:6650"]) == 0
    assert seen["deploy"].auth.kind == "token" and seen["live"].service_url == "pulsar://broker.example:6650"
    assert seen["worker"].service_url == "pulsar://other:6650" and seen["worker"].auth.kind == "token"


def test_without_any_setting_the_flags_keep_their_local_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PULSAR_CLIENT_CONF", "PULSAR_SERVICE_URL", "PULSAR_ADMIN_URL", "PULSAR_AUTH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    from pulsarflow.pulsar.connection import from_args

    config = from_args(cli.build_parser().parse_args(["worker", "--modules", "m"]))
    assert (config.service_url, config.admin_url, config.auth.kind) == (
        "pulsar://127.0.0.1:6650", "http://127.0.0.1:8080", "none")


def test_the_visibility_commands_connect_only_when_a_connection_is_named(client_conf: Path) -> None:
    from pulsarflow.cli_visibility import pulsar_connection

    parser = cli.build_parser()
    assert pulsar_connection(parser.parse_args(["list", "--store", "memory:"]), env={}) is None
    named = pulsar_connection(parser.parse_args(["list", "--client-conf", str(client_conf)]), env={})
    assert named is not None and named.auth.kind == "token"
    by_env = pulsar_connection(parser.parse_args(["list"]), env={"PULSAR_SERVICE_URL": "pulsar://env:6650"})
    assert by_env is not None and by_env.service_url == "pulsar://env:6650"


def test_the_dashboard_serves_with_the_token_given(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setattr("pulsarflow.dashboard.server.serve",
                        lambda service, host, port, token=None: seen.update(token=token, port=port))
    monkeypatch.delenv("PULSAR_SERVICE_URL", raising=False)
    monkeypatch.delenv("PULSAR_CLIENT_CONF", raising=False)
    assert cli.main(["dashboard", "--store", "memory:", "--port", "0", "--token", "s3cret-for-test"]) == 0
    assert seen == {"token": "s3cret-for-test", "port": 0}


def test_an_offline_deploy_reads_no_connection_settings(manifest: Path, monkeypatch: pytest.MonkeyPatch,
                                                         tmp_path: Path) -> None:
    monkeypatch.setenv("PULSAR_CLIENT_CONF", str(tmp_path / "absent.conf"))
    assert cli.main(["deploy", "configs", "--manifest", str(manifest), "--out", str(tmp_path / "out")]) == 0
    assert cli.main(["deploy", "status", "--manifest", str(manifest)]) == 2  # this one needs them
