"""One line for each way a connection to Pulsar fails: what failed and which setting to fix.

Pulsar says little: the broker closes a connection whose token it refuses (the Python
client raises a bare ``ConnectError``), and the admin API answers 401 for a bad token and
for a role without permission alike. So the explanations look at what the failure leaves
(the client's log lines, the answer's body) and at the configuration itself (a token's
``exp`` and ``sub`` claims are readable without its key).
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from pulsarflow.pulsar.connection import Auth, ConnectionConfig, PulsarAccessError


def token_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT, unverified (empty when ``token`` is not a JWT): only to explain failures."""
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error):
        return {}
    return claims if isinstance(claims, dict) else {}


def role_of(auth: Auth) -> str | None:
    """The role a token names (its ``sub``), when readable."""
    if auth.kind != "token":
        return None
    try:
        sub = token_claims(auth.current_token()).get("sub")
    except Exception:
        return None
    return str(sub) if sub else None


def token_expiry(auth: Auth, now: float | None = None) -> str | None:
    """A sentence when the token has expired; None otherwise (or when it cannot tell)."""
    if auth.kind != "token":
        return None
    try:
        exp = token_claims(auth.current_token()).get("exp")
    except Exception:
        return None
    if not isinstance(exp, (int, float)) or exp > (time.time() if now is None else now):
        return None
    when = datetime.fromtimestamp(exp, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"the token ({auth.origin}) expired at {when}: give a new one"


def auth_setting(config: ConnectionConfig) -> str:
    """Which setting holds the credentials, for "fix X" advice."""
    if config.auth.kind == "none":
        return "authPlugin/authParams (--auth-token-file, PULSAR_AUTH_TOKEN)"
    return f"authParams (from {config.auth.origin})"


def refused_credentials(config: ConnectionConfig, where: str) -> str:
    expired = token_expiry(config.auth)
    if expired:
        return f"{where} refused the credentials: {expired}"
    if config.auth.kind == "none":
        return f"{where} requires authentication and none is configured: set {auth_setting(config)}"
    role = role_of(config.auth)
    who = f" for role {role!r}" if role else ""
    return (f"{where} refused the credentials ({config.auth.describe()}){who}: the token is not signed by this "
            f"cluster's key, or the broker does not accept this kind of authentication; fix {auth_setting(config)}")


def tls_failure(config: ConnectionConfig, where: str, detail: str) -> str:
    lowered = detail.lower()
    if "hostname" in lowered or "doesn't match" in lowered or "ip address mismatch" in lowered:
        return (f"{where}: the server's certificate does not name this host ({detail}); connect by a name it "
                f"carries, or set tlsEnableHostnameVerification=false "
                f"({config.where('tlsEnableHostnameVerification')})")
    if config.tls_trust_certs:
        return (f"{where}: the server's certificate is not signed by a CA in {config.tls_trust_certs} ({detail}); "
                f"fix {config.where('tlsTrustCertsFilePath')}")
    return (f"{where}: the server's certificate is not trusted ({detail}); set tlsTrustCertsFilePath to its CA "
            "(--tls-trust-certs, PULSAR_TLS_TRUST_CERTS)")


def denied(config: ConnectionConfig, where: str, what: str, reason: str = "") -> str:
    role = role_of(config.auth) or config.auth.describe()
    because = f" ({reason})" if reason else ""
    return (f"{where}: role {role!r} may not {what}{because}; grant it the permission "
            "(pulsarflow.deploy.permissions, docs/security.md) or use a role that has it")


def explain_http(config: ConnectionConfig, method: str, url: str, response: Any = None,
                 exc: BaseException | None = None) -> PulsarAccessError | None:
    """The error for an admin call that failed for access reasons; None when it is not one."""
    where = f"the admin API at {config.admin_url}"
    if exc is not None:
        import requests

        if isinstance(exc, requests.exceptions.SSLError):
            return PulsarAccessError(tls_failure(config, where, _ssl_detail(exc)))
        if isinstance(exc, requests.exceptions.ConnectionError):
            return PulsarAccessError(f"cannot reach {where} ({type(exc).__name__}); is Pulsar running? "
                                     f"check {config.where('webServiceUrl')}")
        return None
    if response is None or response.status_code not in (401, 403):
        return None
    reason = _reason(response)
    if reason.startswith("Unauthorized to") or response.status_code == 403:
        return PulsarAccessError(denied(config, where, f"{method} {url.split('/admin/', 1)[-1]}", reason))
    return PulsarAccessError(refused_credentials(config, where))


def explain_client(config: ConnectionConfig, exc: BaseException, log_lines: Iterable[str] = (),
                   what: str = "connect") -> PulsarAccessError | None:
    """The error for a ``pulsar`` client failure, helped by the client's log lines; None when not about access."""
    name = type(exc).__name__
    lines = list(log_lines)
    where = f"the broker at {config.service_url}"
    handshake = next((line for line in lines if "Handshake failed" in line), None)
    if handshake is not None:
        return PulsarAccessError(tls_failure(config, where, handshake.split("Handshake failed:", 1)[-1].strip()))
    if name == "AuthorizationError":
        return PulsarAccessError(denied(config, where, what))
    if name in ("AuthenticationError", "ConnectError"):
        if any("Connection refused" in line for line in lines):
            return PulsarAccessError(f"cannot reach {where} (connection refused): check "
                                     f"{config.where('brokerServiceUrl')}")
        return PulsarAccessError(refused_credentials(config, where))
    if name == "Timeout":
        hint = " (a TLS port needs pulsar+ssl://)" if str(config.service_url).startswith("pulsar://") else ""
        return PulsarAccessError(f"no answer from {where} in time{hint}: check {config.where('brokerServiceUrl')}")
    return None


def _reason(response: Any) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    return str(body.get("reason") or "") if isinstance(body, dict) else ""


def _ssl_detail(exc: BaseException) -> str:
    text = str(exc)
    for marker in ("certificate verify failed:", "CERTIFICATE_VERIFY_FAILED"):
        if marker in text:
            return "certificate verify failed: " + text.split(marker, 1)[1].split("(_ssl")[0].strip(" ')\"")
    return text[:200]
