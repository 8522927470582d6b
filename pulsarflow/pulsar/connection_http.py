"""What the admin REST calls need from a :class:`~pulsarflow.pulsar.connection.ConnectionConfig`.

A ``requests.Session`` that trusts the configured CA (hostname checked only when
``tlsEnableHostnameVerification`` says so, as Pulsar's own clients do), presents the client
certificate for ``tls`` authentication, and adds ``Authorization: Bearer <token>`` to each
request: a token file is read at each request, an OAuth2 access token is fetched with the
client credentials grant and fetched again shortly before it expires.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests
from requests.adapters import HTTPAdapter

from pulsarflow.errors import DefinitionError

if TYPE_CHECKING:
    from pulsarflow.pulsar.connection import Auth, ConnectionConfig


def session_for(config: ConnectionConfig) -> requests.Session:
    session = requests.Session()
    verify: bool | str = True
    if config.tls_allow_insecure:
        verify = False
    elif config.tls_trust_certs:
        verify = config.tls_trust_certs
    session.verify = verify
    session.mount("https://", _TLSAdapter(verify, config.tls_hostname_verification))
    auth = config.auth
    if auth.kind == "tls":
        session.cert = (auth.params["cert"], auth.params["key"])
    elif auth.kind == "token":
        session.auth = _Bearer(auth.current_token)
    elif auth.kind == "oauth2":
        session.auth = _Bearer(OAuth2Tokens(auth, verify).token)
    return session


class _Bearer(requests.auth.AuthBase):
    def __init__(self, token: Any) -> None:
        self._token = token

    def __call__(self, request: Any) -> Any:
        request.headers["Authorization"] = f"Bearer {self._token()}"
        return request


class _TLSAdapter(HTTPAdapter):
    """Verifies against the configured CA only, host name as configured.

    ``requests`` lets ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` replace a session's CA: the
    adapter puts the configured one back on every request.
    """

    def __init__(self, verify: bool | str, check_hostname: bool) -> None:
        self._verify = verify
        self._context: ssl.SSLContext | None = None
        if verify is not False and not check_hostname:
            self._context = ssl.create_default_context(cafile=verify if isinstance(verify, str) else None)
            self._context.check_hostname = False
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        if self._context is not None:
            kwargs["ssl_context"] = self._context
            kwargs["assert_hostname"] = False
        super().init_poolmanager(*args, **kwargs)

    def send(self, request: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        kwargs["verify"] = self._verify
        return super().send(request, **kwargs)


class OAuth2Tokens:
    """Access tokens by the client credentials grant (``issuer_url``'s token endpoint, credentials file)."""

    MARGIN_S = 30.0

    def __init__(self, auth: Auth, verify: Any = True, timeout_s: float = 10.0) -> None:
        self.params = auth.params
        self.origin = auth.origin
        self.verify = verify
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._token = ""
        self._expires = 0.0

    def token(self) -> str:
        with self._lock:
            if not self._token or time.monotonic() > self._expires - self.MARGIN_S:
                self._token, lifetime = self._fetch()
                self._expires = time.monotonic() + lifetime
            return self._token

    def _fetch(self) -> tuple[str, float]:
        credentials = self._credentials()
        form = {"grant_type": "client_credentials", "client_id": credentials.get("client_id", ""),
                "client_secret": credentials.get("client_secret", "")}
        for key in ("audience", "scope"):
            if self.params.get(key):
                form[key] = self.params[key]
        endpoint = self._token_endpoint()
        try:
            response = requests.post(endpoint, data=form, timeout=self.timeout_s, verify=self.verify)
        except requests.RequestException as exc:
            raise DefinitionError(f"cannot reach the oauth2 token endpoint {endpoint} (issuerUrl, {self.origin}): "
                                  f"{type(exc).__name__}") from exc
        if response.status_code != 200:
            raise DefinitionError(f"the oauth2 issuer refused the client credentials of {self.params['private_key']} "
                                  f"({self.origin}): HTTP {response.status_code}")
        body = response.json()
        return str(body["access_token"]), float(body.get("expires_in") or 3600)

    def _credentials(self) -> dict[str, Any]:
        path = self.params["private_key"]
        try:
            values = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise DefinitionError(f"the oauth2 privateKey {path} ({self.origin}) is not a readable JSON file with "
                                  "client_id and client_secret") from exc
        if not isinstance(values, dict) or not values.get("client_id"):
            raise DefinitionError(f"the oauth2 privateKey {path} ({self.origin}) has no client_id")
        return values

    def _token_endpoint(self) -> str:
        issuer = self.params["issuer_url"].rstrip("/")
        try:
            found = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=self.timeout_s,
                                 verify=self.verify)
            if found.status_code == 200 and found.json().get("token_endpoint"):
                return str(found.json()["token_endpoint"])
        except (requests.RequestException, ValueError):
            pass
        return f"{issuer}/oauth/token"
