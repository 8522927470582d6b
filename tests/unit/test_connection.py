"""The connection configuration: client.conf, environment and flags, auth forms, and one-line errors."""

from __future__ import annotations

import argparse
import base64
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from pulsarflow.deploy.admin import PulsarAdmin
from pulsarflow.errors import DefinitionError
from pulsarflow.pulsar.connection import (
    TOKEN_PLUGIN,
    ConnectionConfig,
    PulsarAccessError,
    add_arguments,
    from_args,
    from_client_conf,
)
from pulsarflow.pulsar.connection_errors import explain_http, token_expiry
from pulsarflow.pulsar.connection_http import OAuth2Tokens


def jwt(claims: dict[str, Any]) -> str:
    part = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"eyJhbGciOiJIUzI1NiJ9.{part}.c2lnbmF0dXJl"


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "ca.pem").write_text("a CA")
    (tmp_path / "client.token").write_text(jwt({"sub": "client"}) + "\n")
    (tmp_path / "client.conf").write_text(
        "# written by hand\nwebServiceUrl=https://pulsar.example:8443/\nbrokerServiceUrl=pulsar+ssl://pulsar.example:6651/\n"
        f"authPlugin={TOKEN_PLUGIN}\nauthParams=file://{tmp_path}/client.token\n"
        f"tlsTrustCertsFilePath={tmp_path}/ca.pem\ntlsEnableHostnameVerification=true\n"
        "tlsAllowInsecureConnection=false\ntlsCertificateFilePath=\nuseKeyStoreTls=false\n")
    return tmp_path


def test_a_client_conf_is_read_as_is(files: Path) -> None:
    config = from_client_conf(files / "client.conf")
    assert config.service_url == "pulsar+ssl://pulsar.example:6651"
    assert config.admin_url == "https://pulsar.example:8443"
    assert config.auth.kind == "token" and config.auth.token_file == f"{files}/client.token"
    assert config.auth.current_token() == jwt({"sub": "client"})
    assert config.tls_trust_certs == f"{files}/ca.pem" and config.tls_hostname_verification
    assert config.where("tlsTrustCertsFilePath") == f"tlsTrustCertsFilePath (from --client-conf {files}/client.conf)"


def test_environment_then_flags_win_over_the_client_conf(files: Path) -> None:
    env = {"PULSAR_CLIENT_CONF": str(files / "client.conf"), "PULSAR_SERVICE_URL": "pulsar+ssl://env:6651",
           "PULSAR_AUTH_TOKEN": "from-env"}
    config = ConnectionConfig.load(env=env)
    assert config.service_url == "pulsar+ssl://env:6651" and config.admin_url == "https://pulsar.example:8443"
    assert config.auth.token == "from-env" and config.auth.origin == "PULSAR_AUTH_TOKEN"
    flagged = ConnectionConfig.load(env=env, service_url="pulsar://flag:6650", auth_token="from-flag")
    assert flagged.service_url == "pulsar://flag:6650" and flagged.auth.token == "from-flag"
    assert flagged.where("brokerServiceUrl") == "brokerServiceUrl (from --service-url)"


def test_defaults_without_any_setting_are_a_local_standalone() -> None:
    config = ConnectionConfig.load(env={})
    assert (config.service_url, config.admin_url, config.auth.kind) == (
        "pulsar://127.0.0.1:6650", "http://127.0.0.1:8080", "none")


def test_a_missing_client_conf_key_names_the_key_and_the_file(tmp_path: Path) -> None:
    conf = tmp_path / "client.conf"
    conf.write_text("webServiceUrl=http://127.0.0.1:8080/\n")
    config = from_client_conf(conf)
    with pytest.raises(DefinitionError, match=r"client.conf .*client.conf has no brokerServiceUrl.*--service-url"):
        config.require_service_url()
    with pytest.raises(DefinitionError, match=r"cannot read the client.conf .*nothere.conf \(--client-conf\)"):
        from_client_conf(tmp_path / "nothere.conf")


@pytest.mark.parametrize(("overrides", "message"), [
    ({"service_url": "http://x:6650"}, r"brokerServiceUrl 'http://x:6650' \(from --service-url\) must start with"),
    ({"tls_trust_certs": "/no/such/ca.pem"}, r"tlsTrustCertsFilePath \(from --tls-trust-certs\): /no/such/ca.pem "
                                             "does not exist"),
    ({"auth_plugin": "token", "auth_params": ""}, r"no token is given .*authParams=token:"),
    ({"auth_plugin": "kerberos"}, r"authPlugin kerberos .* is not supported"),
    ({"auth_params": "token:x"}, r"authParams is set .* but authPlugin is empty"),
    ({"auth_plugin": "tls"}, r"client certificate is missing"),
    ({"auth_plugin": "oauth2", "auth_params": '{"issuerUrl": "https://idp"}'}, r"lacks private_key"),
    ({"tls_hostname_verification": "maybe"}, r"tlsEnableHostnameVerification must be true or false"),
])
def test_bad_settings_say_which_one(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        ConnectionConfig.load(env={}, **overrides)
    with pytest.raises(DefinitionError, match="/no/token"):
        ConnectionConfig.load(env={}, auth_token_file="/no/token")


def test_token_forms_and_no_secret_in_repr_or_describe(files: Path) -> None:
    for params in ("token:s3cret.tok.en", "s3cret.tok.en", '{"token": "s3cret.tok.en"}'):
        config = ConnectionConfig.load(env={}, auth_plugin="AuthenticationToken", auth_params=params)
        assert config.auth.current_token() == "s3cret.tok.en"
        assert "s3cret" not in repr(config) and "s3cret" not in config.describe()
    rotating = ConnectionConfig.load(env={}, auth_token_file=str(files / "client.token"))
    session = rotating.http_session()
    (files / "client.token").write_text("rotated")
    prepared = session.prepare_request(__import__("requests").Request("GET", "https://x/"))
    assert prepared.headers["Authorization"] == "Bearer rotated"


def test_oauth2_and_tls_params_in_pulsar_forms(files: Path) -> None:
    (files / "creds.json").write_text('{"client_id": "id", "client_secret": "pw"}')
    oauth = ConnectionConfig.load(env={}, auth_plugin="org.apache.pulsar.client.impl.auth.oauth2.AuthenticationOAuth2",
                                  auth_params=json.dumps({"type": "client_credentials", "issuerUrl": "https://idp",
                                                          "privateKey": f"file://{files}/creds.json",
                                                          "audience": "urn:pulsar"}))
    assert dict(oauth.auth.params) == {"issuer_url": "https://idp", "private_key": f"{files}/creds.json",
                                       "audience": "urn:pulsar"}
    tls = ConnectionConfig.load(env={}, auth_plugin="tls",
                                auth_params=f"tlsCertFile:{files}/ca.pem,tlsKeyFile:{files}/client.token")
    assert tls.auth.params == {"cert": f"{files}/ca.pem", "key": f"{files}/client.token"}
    assert tls.http_session().cert == (f"{files}/ca.pem", f"{files}/client.token")


def test_flags_are_wired_through_argparse(files: Path) -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--client-conf", str(files / "client.conf"), "--admin-url", "https://other:8443",
                              "--no-tls-hostname-verification"])
    config = from_args(args, env={})
    assert config.admin_url == "https://other:8443" and not config.tls_hostname_verification
    assert config.auth.token_file == f"{files}/client.token"


def test_an_expired_token_is_named_before_any_connection() -> None:
    expired = ConnectionConfig.load(env={}, auth_token=jwt({"sub": "c", "exp": 1_000_000_000})).auth
    assert token_expiry(expired) == "the token (--auth-token) expired at 2001-09-09 01:46:40 UTC: give a new one"
    assert token_expiry(ConnectionConfig.load(env={}, auth_token=jwt({"exp": time.time() + 60})).auth) is None


class _Answer:
    def __init__(self, status: int, body: Any) -> None:
        self.status_code, self._body = status, body

    def json(self) -> Any:
        if isinstance(self._body, str):
            raise ValueError("html")
        return self._body


def test_admin_answers_are_translated() -> None:
    config = ConnectionConfig.load(env={}, auth_token=jwt({"sub": "client"}))
    refused = explain_http(config, "GET", "http://x/admin/v2/clusters", _Answer(401, "<html>Authentication required"))
    assert refused is not None and "refused the credentials" in str(refused) and "'client'" in str(refused)
    denied = explain_http(config, "PUT", "http://x/admin/v2/persistent/public/default/t",
                          _Answer(401, {"reason": "Unauthorized to validateTopicOperation"}))
    assert denied is not None and "role 'client' may not PUT v2/persistent/public/default/t" in str(denied)
    assert explain_http(config, "GET", "http://x/", _Answer(404, {})) is None


@pytest.fixture
def fake_http() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """A local HTTP server: 401 without a Bearer header, an OAuth2 token endpoint, records headers."""
    seen: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            seen.append(dict(self.headers))
            if self.path.startswith("/.well-known"):
                assert isinstance(self.server, ThreadingHTTPServer)
                return self._send(200, {"token_endpoint": f"http://127.0.0.1:{self.server.server_port}/token"})
            ok = self.headers.get("Authorization") == "Bearer good"
            self._send(200 if ok else 401, ["standalone"] if ok else {"reason": "Authentication required"})

        def do_POST(self) -> None:
            form = self.rfile.read(int(self.headers["Content-Length"])).decode()
            good = "client_secret=pw" in form and "grant_type=client_credentials" in form
            self._send(200 if good else 401, {"access_token": "good", "expires_in": 3600} if good else {})

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", seen
    server.shutdown()
    server.server_close()


def test_pulsar_admin_sends_the_token_and_says_what_a_401_means(fake_http: tuple[str, list[Any]]) -> None:
    url, seen = fake_http
    good = PulsarAdmin(ConnectionConfig.load(env={}, admin_url=url, auth_token="good"), timeout=5)
    assert good._call("GET", "/admin/v2/clusters").json() == ["standalone"]
    assert seen[-1]["Authorization"] == "Bearer good"
    with pytest.raises(PulsarAccessError, match=r"requires authentication and none is configured"):
        PulsarAdmin(url, timeout=5)._call("GET", "/admin/v2/clusters")  # the old constructor still works
    with pytest.raises(PulsarAccessError, match=r"cannot reach the admin API .*webServiceUrl \(from --admin-url\)"):
        PulsarAdmin(ConnectionConfig.load(env={}, admin_url="http://127.0.0.1:9"), timeout=2)._call("GET", "/")


def test_oauth2_client_credentials_fetch_a_token(fake_http: tuple[str, list[Any]], tmp_path: Path) -> None:
    url, _ = fake_http
    (tmp_path / "creds.json").write_text('{"client_id": "id", "client_secret": "pw"}')
    params = json.dumps({"issuerUrl": url, "privateKey": str(tmp_path / "creds.json")})
    config = ConnectionConfig.load(env={}, admin_url=url, auth_plugin="oauth2", auth_params=params)
    assert OAuth2Tokens(config.auth).token() == "good"
    assert PulsarAdmin(config, timeout=5)._call("GET", "/admin/v2/clusters").json() == ["standalone"]
    (tmp_path / "creds.json").write_text('{"client_id": "id", "client_secret": "wrong"}')
    with pytest.raises(DefinitionError, match=r"oauth2 issuer refused the client credentials"):
        OAuth2Tokens(config.auth).token()


def test_client_failures_are_explained_from_the_error_and_the_client_log() -> None:
    from pulsarflow.pulsar.connection_errors import explain_client

    def fake(name: str) -> Exception:
        return type(name, (Exception,), {})("Pulsar error")

    config = ConnectionConfig.load(env={}, service_url="pulsar+ssl://b:6651", auth_token=jwt({"sub": "web"}))
    cases = [
        (fake("ConnectError"), ["[a -> b] Handshake failed: certificate verify failed (SSL routines)"],
         "certificate is not trusted"),
        (fake("ConnectError"), [], "the broker at pulsar+ssl://b:6651 refused the credentials"),
        (fake("ConnectError"), ["Failed to establish connection: Connection refused"], "connection refused"),
        (fake("AuthorizationError"), [], "role 'web' may not produce to t"),
        (fake("Timeout"), [], "no answer from the broker"),
    ]
    for exc, lines, words in cases:
        error = explain_client(config, exc, lines, what="produce to t")
        assert error is not None and words in str(error), (type(exc).__name__, lines, error)
    assert explain_client(config, fake("ProducerBusy")) is None
    plain = ConnectionConfig.load(env={}, service_url="pulsar://b:6651")
    assert "requires authentication" in str(explain_client(plain, fake("ConnectError")))
    assert "needs pulsar+ssl://" in str(explain_client(plain, fake("Timeout")))
