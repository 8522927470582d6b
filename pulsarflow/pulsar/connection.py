"""How to reach Pulsar: one configuration for the client, the workers, the CLI and the admin calls.

It speaks Pulsar's own language: the keys of ``conf/client.conf`` (what ``pulsar-admin``
and ``pulsar-client`` read)::

    brokerServiceUrl=pulsar+ssl://broker.example.com:6651/
    webServiceUrl=https://broker.example.com:8443/
    authPlugin=org.apache.pulsar.client.impl.auth.AuthenticationToken
    authParams=file:///etc/pulsar/client.token
    tlsTrustCertsFilePath=/etc/pulsar/ca.cert.pem
    tlsEnableHostnameVerification=true
    tlsAllowInsecureConnection=false

Where each setting comes from, later ones winning: the defaults (a local standalone, only
when no client.conf is named), a client.conf (``client_conf=`` or ``PULSAR_CLIENT_CONF``),
the environment (:data:`ENVIRONMENT`), then explicit values (the CLI flags of
:func:`add_arguments`). A token given in a later place replaces the authentication of an
earlier one. Every value remembers where it came from, so an error can name the setting
to fix.

Authentication: ``token`` (a value, ``file:`` a file read again at each connection, so a
rotated token is picked up, or ``PULSAR_AUTH_TOKEN``), ``oauth2`` (client credentials:
``{"issuerUrl", "privateKey", "audience", "scope"}``, Pulsar's Java keys or the C++
client's snake_case ones) and ``tls`` (a client certificate: ``tlsCertFile:...,tlsKeyFile:...``
or ``tlsCertificateFilePath``/``tlsKeyFilePath``). Secrets never appear in ``repr`` or
:meth:`ConnectionConfig.describe`.

:mod:`pulsarflow.pulsar.connection_check` turns what goes wrong (a wrong or expired token, a CA
that does not match, a role without permission) into one line naming the setting.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pulsarflow.errors import BackendError, DefinitionError

TOKEN_PLUGIN = "org.apache.pulsar.client.impl.auth.AuthenticationToken"
OAUTH2_PLUGIN = "org.apache.pulsar.client.impl.auth.oauth2.AuthenticationOAuth2"
TLS_PLUGIN = "org.apache.pulsar.client.impl.auth.AuthenticationTls"
_KINDS = {"token": TOKEN_PLUGIN, "oauth2": OAUTH2_PLUGIN, "tls": TLS_PLUGIN}

DEFAULTS = {"brokerServiceUrl": "pulsar://127.0.0.1:6650", "webServiceUrl": "http://127.0.0.1:8080"}

# Environment variable -> client.conf key (PULSAR_AUTH_TOKEN*/PULSAR_CLIENT_CONF are handled apart).
ENVIRONMENT = {
    "PULSAR_SERVICE_URL": "brokerServiceUrl",
    "PULSAR_ADMIN_URL": "webServiceUrl",
    "PULSAR_AUTH_PLUGIN": "authPlugin",
    "PULSAR_AUTH_PARAMS": "authParams",
    "PULSAR_TLS_TRUST_CERTS": "tlsTrustCertsFilePath",
    "PULSAR_TLS_ALLOW_INSECURE": "tlsAllowInsecureConnection",
    "PULSAR_TLS_HOSTNAME_VERIFICATION": "tlsEnableHostnameVerification",
    "PULSAR_TLS_CERT_FILE": "tlsCertificateFilePath",
    "PULSAR_TLS_KEY_FILE": "tlsKeyFilePath",
}

# Explicit keyword -> client.conf key.
OVERRIDES = {
    "service_url": "brokerServiceUrl", "admin_url": "webServiceUrl", "auth_plugin": "authPlugin",
    "auth_params": "authParams", "tls_trust_certs": "tlsTrustCertsFilePath",
    "tls_allow_insecure": "tlsAllowInsecureConnection", "tls_hostname_verification": "tlsEnableHostnameVerification",
    "tls_cert_file": "tlsCertificateFilePath", "tls_key_file": "tlsKeyFilePath",
}


class PulsarAccessError(BackendError):
    """Pulsar could not be reached, or refused these credentials; the message names the setting to fix."""


Settings = dict[str, tuple[str, str]]  # client.conf key -> (value, where it was set)


@dataclass(frozen=True)
class Auth:
    """The authentication of a connection: ``kind`` is none, token, oauth2 or tls."""

    kind: str = "none"
    origin: str = ""
    token: str | None = field(default=None, repr=False)
    token_file: str | None = None
    params: Mapping[str, str] = field(default_factory=dict, repr=False)

    def current_token(self) -> str:
        """The token now (a token file is read again, so a rotated token is used)."""
        if self.token_file is not None:
            try:
                return Path(self.token_file).read_text().strip()
            except OSError as exc:
                raise DefinitionError(f"cannot read the token file {self.token_file} ({self.origin}): "
                                      f"{exc.strerror}") from exc
        return self.token or ""

    def describe(self) -> str:
        if self.kind == "token":
            return f"token {'file ' + self.token_file if self.token_file else '(a value)'} from {self.origin}"
        if self.kind == "oauth2":
            return f"oauth2 client credentials of {self.params.get('issuer_url')} from {self.origin}"
        if self.kind == "tls":
            return f"client certificate {self.params.get('cert')} from {self.origin}"
        return "no authentication"


@dataclass(frozen=True)
class ConnectionConfig:
    """How to reach one Pulsar cluster. Build it with :meth:`load`, :func:`from_client_conf` or :func:`from_args`.

    ``service_url`` or ``admin_url`` is None when a client.conf was read that lacks the
    key: using it then raises a DefinitionError naming the key.
    """

    service_url: str | None = DEFAULTS["brokerServiceUrl"]
    admin_url: str | None = DEFAULTS["webServiceUrl"]
    auth: Auth = field(default_factory=Auth)
    tls_trust_certs: str | None = None
    tls_allow_insecure: bool = False
    tls_hostname_verification: bool = False
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    origins: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    # -- loading ------------------------------------------------------------------------

    @classmethod
    def load(cls, client_conf: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None,
             auth_token: str | None = None, auth_token_file: str | None = None,
             **overrides: Any) -> ConnectionConfig:
        """Defaults, then a client.conf, then the environment, then explicit values (see the module doc)."""
        env = os.environ if env is None else env
        unknown = set(overrides) - set(OVERRIDES)
        if unknown:
            raise TypeError(f"unknown connection settings {sorted(unknown)}; known: {sorted(OVERRIDES)}")
        conf_path = client_conf if client_conf is not None else env.get("PULSAR_CLIENT_CONF") or None
        settings: Settings = {}
        if conf_path is None:
            settings.update({k: (v, "the default") for k, v in DEFAULTS.items()})
        else:
            where = "--client-conf" if client_conf is not None else "PULSAR_CLIENT_CONF"
            settings.update(read_client_conf(conf_path, where))
        _layer(settings, {key: (env[name], name) for name, key in ENVIRONMENT.items() if env.get(name)},
               _token_setting(env.get("PULSAR_AUTH_TOKEN"), env.get("PULSAR_AUTH_TOKEN_FILE"),
                              "PULSAR_AUTH_TOKEN", "PULSAR_AUTH_TOKEN_FILE"))
        explicit = {OVERRIDES[k]: (_text(v), "--" + k.replace("_", "-")) for k, v in overrides.items() if v is not None}
        _layer(settings, explicit,
               _token_setting(auth_token, auth_token_file, "--auth-token", "--auth-token-file"))
        return cls.from_settings(settings)

    @classmethod
    def from_settings(cls, settings: Settings) -> ConnectionConfig:
        """A config from client.conf keys, each with where it was set."""
        def get(key: str) -> str | None:
            value = settings.get(key, ("", ""))[0].strip()
            return value or None

        origins = {key: where for key, (_, where) in settings.items()}
        if "__conf__" in settings:
            origins["__conf__"] = settings["__conf__"][0]
        config = cls(
            service_url=_url(get("brokerServiceUrl"), ("pulsar://", "pulsar+ssl://"), "brokerServiceUrl", origins),
            admin_url=_url(get("webServiceUrl"), ("http://", "https://"), "webServiceUrl", origins),
            auth=parse_auth(get("authPlugin"), get("authParams"), origins.get("authParams")
                            or origins.get("authPlugin", ""), settings),
            tls_trust_certs=_file(get("tlsTrustCertsFilePath"), "tlsTrustCertsFilePath", origins),
            tls_allow_insecure=_flag(get("tlsAllowInsecureConnection"), "tlsAllowInsecureConnection", origins),
            tls_hostname_verification=_flag(get("tlsEnableHostnameVerification"), "tlsEnableHostnameVerification",
                                            origins),
            tls_cert_file=_file(get("tlsCertificateFilePath"), "tlsCertificateFilePath", origins),
            tls_key_file=_file(get("tlsKeyFilePath"), "tlsKeyFilePath", origins),
            origins=origins)
        return config

    def where(self, key: str) -> str:
        """Which setting to fix for a client.conf key: ``tlsTrustCertsFilePath (from --client-conf a.conf)``."""
        origin = self.origins.get(key)
        return f"{key} (from {origin})" if origin else f"{key} (not set)"

    def require_service_url(self) -> str:
        if self.service_url is None:
            raise DefinitionError(f"no broker service URL: {self.origins.get('__conf__', 'the client.conf')} has "
                                  "no brokerServiceUrl; add brokerServiceUrl=pulsar+ssl://host:6651 or pass "
                                  "--service-url (PULSAR_SERVICE_URL)")
        return self.service_url

    def require_admin_url(self) -> str:
        if self.admin_url is None:
            raise DefinitionError(f"no web service URL: {self.origins.get('__conf__', 'the client.conf')} has "
                                  "no webServiceUrl; add webServiceUrl=https://host:8443 or pass --admin-url "
                                  "(PULSAR_ADMIN_URL)")
        return self.admin_url

    def describe(self) -> str:
        """One line for logs, without secrets."""
        trust = f", CA {self.tls_trust_certs}" if self.tls_trust_certs else ""
        return f"broker {self.service_url}, admin {self.admin_url}, {self.auth.describe()}{trust}"

    # -- building -----------------------------------------------------------------------

    def client_options(self, operation_timeout_s: float = 30, connection_timeout_ms: int = 10_000) -> dict[str, Any]:
        """The keyword arguments of ``pulsar.Client`` beside the service URL."""
        options: dict[str, Any] = {
            "operation_timeout_seconds": max(1, int(operation_timeout_s)),
            "connection_timeout_ms": connection_timeout_ms,
            "tls_allow_insecure_connection": self.tls_allow_insecure,
            "tls_validate_hostname": self.tls_hostname_verification,
        }
        if self.tls_trust_certs:
            options["tls_trust_certs_file_path"] = self.tls_trust_certs
        authentication = self.pulsar_authentication()
        if authentication is not None:
            options["authentication"] = authentication
        return options

    def pulsar_authentication(self) -> Any:
        import pulsar

        auth = self.auth
        if auth.kind == "token":
            return pulsar.AuthenticationToken(auth.current_token if auth.token_file else auth.current_token())
        if auth.kind == "oauth2":
            return pulsar.AuthenticationOauth2(json.dumps(dict(auth.params)))
        if auth.kind == "tls":
            return pulsar.AuthenticationTLS(auth.params["cert"], auth.params["key"])
        return None

    def client(self, logger: Any = None, **options: Any) -> Any:
        """A new ``pulsar.Client`` (the caller closes it)."""
        import pulsar

        if logger is None:
            logger = pulsar.ConsoleLogger(pulsar.LoggerLevel.Warn)
        return pulsar.Client(self.require_service_url(), logger=logger, **{**self.client_options(), **options})

    def http_session(self) -> Any:
        """A ``requests.Session`` for the admin REST API: its CA, client certificate and credentials."""
        from pulsarflow.pulsar.connection_http import session_for

        return session_for(self)


def as_config(target: str | ConnectionConfig) -> ConnectionConfig:
    """``target`` itself, or for a plain URL an open cluster at it: nothing else is read (no environment)."""
    if isinstance(target, ConnectionConfig):
        return target
    if target.startswith(("http://", "https://")):
        return ConnectionConfig(admin_url=target.rstrip("/"), origins={"webServiceUrl": "the admin URL"})
    return ConnectionConfig(service_url=target, origins={"brokerServiceUrl": "the service URL"})


def from_client_conf(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> ConnectionConfig:
    """A client.conf as is: only its own keys (the environment is ignored unless ``env`` is given)."""
    return ConnectionConfig.load(client_conf=path, env={} if env is None else env)


def read_client_conf(path: str | os.PathLike[str], where: str = "--client-conf") -> Settings:
    """The keys of a Java properties file (``key=value``, ``key: value``, ``#``/``!`` comments)."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise DefinitionError(f"cannot read the client.conf {path} ({where}): {exc.strerror}") from exc
    settings: Settings = {}
    origin = f"{where} {path}"
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#!":
            continue
        key, _, value = line.partition("=") if "=" in line else line.partition(":")
        settings[key.strip()] = (value.strip(), origin)
    settings["__conf__"] = (f"the client.conf {path}", where)
    return settings


def parse_auth(plugin: str | None, params: str | None, origin: str, settings: Settings | None = None) -> Auth:
    """An :class:`Auth` from client.conf's ``authPlugin`` and ``authParams``."""
    settings = settings or {}
    if not plugin:
        if params:
            raise DefinitionError(f"authParams is set ({origin}) but authPlugin is empty: set authPlugin "
                                  f"(e.g. {TOKEN_PLUGIN})")
        return Auth()
    kind = next((k for k, name in _KINDS.items() if plugin in (k, name, name.rsplit(".", 1)[1])), None)
    if kind is None:
        raise DefinitionError(f"authPlugin {plugin} ({origin}) is not supported: use token ({TOKEN_PLUGIN}), "
                              f"oauth2 ({OAUTH2_PLUGIN}) or tls ({TLS_PLUGIN})")
    return {"token": _token_auth, "oauth2": _oauth2_auth, "tls": _tls_auth}[kind](params or "", origin, settings)


def _token_auth(params: str, origin: str, settings: Settings) -> Auth:
    if params.startswith("{"):
        params = "token:" + str(_json_params(params, origin).get("token", ""))
    if params.startswith("file:"):
        path = _file_url(params)
        _check_file(path, f"authParams ({origin})")
        return Auth("token", origin, token_file=path)
    token = params.removeprefix("token:").strip()
    if not token:
        raise DefinitionError(f"authPlugin is a token but no token is given ({origin}): set authParams=token:<jwt> "
                              "or authParams=file:///path/to/token (or --auth-token-file, PULSAR_AUTH_TOKEN)")
    return Auth("token", origin, token=token)


def _oauth2_auth(params: str, origin: str, settings: Settings) -> Auth:
    values = _json_params(params, origin)
    snake = {"issuer_url": values.get("issuer_url") or values.get("issuerUrl"),
             "private_key": values.get("private_key") or values.get("privateKey"),
             "audience": values.get("audience"), "scope": values.get("scope")}
    for key in ("issuer_url", "private_key"):
        if not snake[key]:
            raise DefinitionError(f"oauth2 authParams ({origin}) lacks {key} (issuerUrl/privateKey)")
    key_file = _file_url(str(snake["private_key"]))
    _check_file(key_file, f"the oauth2 privateKey ({origin})")
    snake["private_key"] = key_file
    return Auth("oauth2", origin, params={k: str(v) for k, v in snake.items() if v})


def _tls_auth(params: str, origin: str, settings: Settings) -> Auth:
    values: dict[str, Any] = {}
    if params.startswith("{"):
        values = _json_params(params, origin)
    elif params:
        values = dict(part.split(":", 1) for part in params.split(",") if ":" in part)
    cert = values.get("tlsCertFile") or settings.get("tlsCertificateFilePath", ("", ""))[0]
    key = values.get("tlsKeyFile") or settings.get("tlsKeyFilePath", ("", ""))[0]
    if not cert or not key:
        raise DefinitionError(f"authPlugin is tls ({origin}) but the client certificate is missing: set "
                              "authParams=tlsCertFile:/path/cert.pem,tlsKeyFile:/path/key.pem")
    for path, what in ((cert, "tlsCertFile"), (key, "tlsKeyFile")):
        _check_file(_file_url(path), f"{what} ({origin})")
    return Auth("tls", origin, params={"cert": _file_url(cert), "key": _file_url(key)})


def _json_params(params: str, origin: str) -> dict[str, Any]:
    try:
        values = json.loads(params)
    except ValueError:
        raise DefinitionError(f"authParams ({origin}) is not valid JSON") from None
    if not isinstance(values, dict):
        raise DefinitionError(f"authParams ({origin}) must be a JSON object")
    return values


def _token_setting(token: str | None, token_file: str | None, token_name: str, file_name: str) -> Settings:
    if token_file:
        return {"authPlugin": (TOKEN_PLUGIN, file_name), "authParams": (f"file://{token_file}", file_name)}
    if token:
        return {"authPlugin": (TOKEN_PLUGIN, token_name), "authParams": (f"token:{token}", token_name)}
    return {}


def _layer(settings: Settings, values: Settings, token: Settings) -> None:
    if "authPlugin" in values or "authParams" in values or token:
        # A new authentication replaces the whole one before it (a token over a tls plugin...).
        settings.pop("authPlugin", None)
        settings.pop("authParams", None)
    settings.update(values)
    settings.update(token)


def _url(value: str | None, schemes: tuple[str, ...], key: str, origins: Mapping[str, str]) -> str | None:
    if value is None:
        return None
    if not value.startswith(schemes):
        raise DefinitionError(f"{key} {value!r} (from {origins.get(key)}) must start with {' or '.join(schemes)}")
    return value.rstrip("/")


def _file(value: str | None, key: str, origins: Mapping[str, str]) -> str | None:
    if value is None:
        return None
    path = _file_url(value)
    _check_file(path, f"{key} (from {origins.get(key)})")
    return path


def _file_url(value: str) -> str:
    if value.startswith("file://"):
        return value[len("file://"):]
    return value.removeprefix("file:")


def _check_file(path: str, what: str) -> None:
    if not os.access(path, os.R_OK) or not Path(path).is_file():
        reason = "does not exist" if not Path(path).exists() else "is not a readable file"
        raise DefinitionError(f"{what}: {path} {reason}")


def _flag(value: str | None, key: str, origins: Mapping[str, str]) -> bool:
    if value is None:
        return False
    lowered = value.lower()
    if lowered not in ("true", "false", "1", "0", "yes", "no"):
        raise DefinitionError(f"{key} must be true or false, got {value!r} (from {origins.get(key)})")
    return lowered in ("true", "1", "yes")


def _text(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


# -- command-line flags -----------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser | Any) -> None:
    """The connection flags; each defaults to None so the client.conf and the environment apply."""
    group = parser.add_argument_group("Pulsar connection (client.conf keys; PULSAR_* environment variables)")
    group.add_argument("--client-conf", metavar="PATH", help="a Pulsar client.conf, read as is (PULSAR_CLIENT_CONF)")
    group.add_argument("--service-url", help="brokerServiceUrl, e.g. pulsar+ssl://host:6651 (PULSAR_SERVICE_URL; "
                       f"without a client.conf the default is {DEFAULTS['brokerServiceUrl']})")
    group.add_argument("--admin-url", help="webServiceUrl, e.g. https://host:8443 (PULSAR_ADMIN_URL; without a "
                       f"client.conf the default is {DEFAULTS['webServiceUrl']})")
    group.add_argument("--auth-token", help="a token (visible to other local users in the process list: "
                                            "prefer --auth-token-file or PULSAR_AUTH_TOKEN)")
    group.add_argument("--auth-token-file", metavar="PATH", help="a file holding the token (PULSAR_AUTH_TOKEN_FILE)")
    group.add_argument("--auth-plugin", help="authPlugin: token, oauth2, tls or a Pulsar class name")
    group.add_argument("--auth-params", help="authParams, as in client.conf (PULSAR_AUTH_PARAMS)")
    group.add_argument("--tls-trust-certs", metavar="PATH", help="tlsTrustCertsFilePath: the CA bundle")
    group.add_argument("--tls-hostname-verification", action=argparse.BooleanOptionalAction, default=None,
                       help="tlsEnableHostnameVerification")
    group.add_argument("--tls-allow-insecure", action=argparse.BooleanOptionalAction, default=None,
                       help="tlsAllowInsecureConnection (accept any certificate: tests only)")


def from_args(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> ConnectionConfig:
    """The config the flags of :func:`add_arguments` describe (over a client.conf and the environment)."""
    names = ("service_url", "admin_url", "auth_plugin", "auth_params", "tls_trust_certs",
             "tls_hostname_verification", "tls_allow_insecure")
    overrides = {name: getattr(args, name, None) for name in names}
    return ConnectionConfig.load(client_conf=getattr(args, "client_conf", None), env=env,
                                 auth_token=getattr(args, "auth_token", None),
                                 auth_token_file=getattr(args, "auth_token_file", None), **overrides)

