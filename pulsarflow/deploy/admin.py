"""A small client of Pulsar's admin REST API (functions, schemas, namespace policies, permissions).

``PulsarAdmin(url)`` talks to an open standalone; ``PulsarAdmin(config)`` (a
:class:`~pulsarflow.pulsar.connection.ConnectionConfig`) sends its credentials and trusts its CA.
A refused token, a role without permission or a certificate that does not verify raises
:class:`~pulsarflow.pulsar.connection.PulsarAccessError` with one line naming the setting to fix.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pulsarflow.errors import BackendError
from pulsarflow.pulsar.connection import ConnectionConfig
from pulsarflow.pulsar.connection_errors import explain_http

try:
    import requests
except ImportError as exc:  # pragma: no cover
    raise ImportError("the deploy tool needs requests: pip install 'pulsarflow[pulsar]'") from exc


class PulsarAdmin:
    def __init__(self, url: str | ConnectionConfig = "http://127.0.0.1:8080", timeout: float = 60.0,
                 connection: ConnectionConfig | None = None) -> None:
        if isinstance(url, ConnectionConfig):
            connection, url = url, url.require_admin_url()
        if connection is None:
            connection = ConnectionConfig(admin_url=url.rstrip("/"), origins={"webServiceUrl": "the admin URL"})
        self.connection = connection
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.http = connection.http_session()

    # -- functions ------------------------------------------------------------------------

    def function(self, tenant: str, namespace: str, name: str) -> dict[str, Any] | None:
        response = self._call("GET", f"/admin/v3/functions/{tenant}/{namespace}/{name}", ok=(200, 404))
        return None if response.status_code == 404 else response.json()

    def create_or_update(self, config: dict[str, Any], package: Path) -> str:
        path = f"/admin/v3/functions/{config['tenant']}/{config['namespace']}/{config['name']}"
        method = "PUT" if self.function(config["tenant"], config["namespace"], config["name"]) else "POST"
        with package.open("rb") as data:
            files = {"functionConfig": (None, json.dumps(config), "application/json"),
                     "data": (package.name, data, "application/octet-stream")}
            self._call(method, path, files=files, retry_503=True)
        return "updated" if method == "PUT" else "created"

    def stop_function(self, tenant: str, namespace: str, name: str) -> None:
        """Stop every instance; its messages wait in its topics until it is started again."""
        self._call("POST", f"/admin/v3/functions/{tenant}/{namespace}/{name}/stop", retry_503=True)

    def start_function(self, tenant: str, namespace: str, name: str) -> None:
        self._call("POST", f"/admin/v3/functions/{tenant}/{namespace}/{name}/start", ok=(200, 204, 400),
                   retry_503=True)  # 400: already running

    def delete_function(self, tenant: str, namespace: str, name: str) -> bool:
        response = self._call("DELETE", f"/admin/v3/functions/{tenant}/{namespace}/{name}", ok=(200, 204, 404))
        return bool(response.status_code != 404)

    def function_status(self, tenant: str, namespace: str, name: str) -> dict[str, Any]:
        return _json(self._call("GET", f"/admin/v3/functions/{tenant}/{namespace}/{name}/status"))

    def function_state(self, tenant: str, namespace: str, name: str, key: str) -> dict[str, Any] | None:
        """One key of a function's state (``stringValue``, ``version``...); None when absent."""
        response = self._call("GET", f"/admin/v3/functions/{tenant}/{namespace}/{name}/state/{quote(key, safe='')}",
                              ok=(200, 404))
        return None if response.status_code == 404 else response.json()

    # -- schemas --------------------------------------------------------------------------

    def set_compatibility(self, tenant: str, namespace: str, strategy: str) -> None:
        self._call("PUT", f"/admin/v2/namespaces/{tenant}/{namespace}/schemaCompatibilityStrategy",
                   json=strategy, ok=(200, 204))

    def set_schema_validation(self, tenant: str, namespace: str, enforced: bool) -> None:
        """Refuse (or allow) producers that attach no schema on the namespace's topics."""
        self._call("POST", f"/admin/v2/namespaces/{tenant}/{namespace}/schemaValidationEnforced",
                   json=enforced, ok=(200, 204))

    def schema_validation(self, tenant: str, namespace: str) -> bool:
        response = self._call("GET", f"/admin/v2/namespaces/{tenant}/{namespace}/schemaValidationEnforced")
        return bool(response.json())

    def schema(self, topic: str) -> dict[str, Any] | None:
        response = self._call("GET", f"/admin/v2/schemas/{_topic_path(topic)}/schema", ok=(200, 404))
        return None if response.status_code == 404 else response.json()

    def is_compatible(self, topic: str, avro: dict[str, Any]) -> bool:
        response = self._call("POST", f"/admin/v2/schemas/{_topic_path(topic)}/compatibility",
                              json=_payload(avro), ok=(200, 202, 404))
        return response.status_code == 404 or bool(response.json().get("compatibility"))

    def upload_schema(self, topic: str, avro: dict[str, Any]) -> dict[str, Any]:
        return _json(self._call("POST", f"/admin/v2/schemas/{_topic_path(topic)}/schema", json=_payload(avro)))

    # -- topics ---------------------------------------------------------------------------

    def keep_forever(self, topic: str) -> None:
        """Create ``topic`` if needed and retain its messages without limit (events are replayable)."""
        path = f"/admin/v2/{topic.split('://', 1)[0]}/{_topic_path(topic)}"
        self._call("PUT", path, ok=(200, 204, 409))
        self._call("POST", f"{path}/retention", json={"retentionTimeInMinutes": -1, "retentionSizeInMB": -1})

    def retention(self, topic: str) -> dict[str, Any]:
        """The topic's own retention policy; empty when it has none (the namespace's applies)."""
        response = self._call("GET", f"/admin/v2/{topic.split('://', 1)[0]}/{_topic_path(topic)}/retention")
        return response.json() if response.content.strip() else {}

    def create_topic(self, topic: str) -> None:
        """Create a non-partitioned ``topic``; nothing when it exists."""
        self._call("PUT", f"/admin/v2/{topic.split('://', 1)[0]}/{_topic_path(topic)}", ok=(200, 204, 409))

    def topic_exists(self, topic: str) -> bool:
        path = f"/admin/v2/{topic.split('://', 1)[0]}/{_topic_path(topic)}/stats"
        return bool(self._call("GET", path, ok=(200, 404)).status_code == 200)

    def partitions(self, topic: str) -> int:
        """The partition count of ``topic``; 0 when it is non-partitioned or does not exist."""
        path = f"/admin/v2/{topic.split('://', 1)[0]}/{_topic_path(topic)}/partitions"
        response = self._call("GET", path, ok=(200, 404))
        return int(response.json().get("partitions", 0)) if response.status_code == 200 else 0

    def create_partitioned_topic(self, topic: str, partitions: int) -> None:
        """Create ``topic`` with ``partitions`` partitions (it must not exist)."""
        path = f"/admin/v2/{topic.split('://', 1)[0]}/{_topic_path(topic)}/partitions"
        self._call("PUT", path, json=partitions, ok=(200, 204))

    def grow_partitioned_topic(self, topic: str, partitions: int) -> None:
        """Raise the partition count of a partitioned ``topic`` (Pulsar refuses fewer)."""
        path = f"/admin/v2/{topic.split('://', 1)[0]}/{_topic_path(topic)}/partitions"
        self._call("POST", path, json=partitions, ok=(200, 204))

    # -- plumbing -------------------------------------------------------------------------

    def _call(self, method: str, path: str, ok: tuple[int, ...] = (200, 204), retry_503: bool = False,
              **kwargs: Any) -> Any:
        for attempt in range(20 if retry_503 else 1):
            try:
                response = self.http.request(method, self.url + path, timeout=self.timeout, **kwargs)
            except requests.RequestException as exc:
                access = explain_http(self.connection, method, self.url + path, exc=exc)
                if access is not None:
                    raise access from exc
                raise BackendError(f"{method} {self.url}{path} failed: {exc}; is Pulsar running?") from exc
            if response.status_code == 503 and attempt < 19 and retry_503:
                time.sleep(1.5)  # the functions worker answers 503 while it starts
                continue
            if response.status_code not in ok:
                access = explain_http(self.connection, method, self.url + path, response)
                if access is not None:
                    raise access
                raise BackendError(f"{method} {path} answered {response.status_code}: {response.text[:500]}")
            return response
        raise BackendError(f"{method} {path} kept answering 503")


    # -- permissions ----------------------------------------------------------------------

    def grant_topic(self, topic: str, role: str, actions: list[str]) -> None:
        """Give ``role`` the ``actions`` (produce, consume) on one topic (replacing its previous ones)."""
        path = f"/admin/v2/{topic.split('://', 1)[0]}/{_topic_path(topic)}/permissions/{quote(role, safe='')}"
        self._call("POST", path, json=sorted(actions), ok=(200, 204))

    def revoke_topic(self, topic: str, role: str) -> None:
        path = f"/admin/v2/{topic.split('://', 1)[0]}/{_topic_path(topic)}/permissions/{quote(role, safe='')}"
        self._call("DELETE", path, ok=(200, 204, 404, 412))

    def topic_permissions(self, topic: str) -> dict[str, list[str]]:
        """Role -> actions granted on the topic (the namespace's grants included)."""
        path = f"/admin/v2/{topic.split('://', 1)[0]}/{_topic_path(topic)}/permissions"
        return dict(self._call("GET", path).json())

    def grant_namespace(self, tenant: str, namespace: str, role: str, actions: list[str]) -> None:
        path = f"/admin/v2/namespaces/{tenant}/{namespace}/permissions/{quote(role, safe='')}"
        self._call("POST", path, json=sorted(actions), ok=(200, 204))


def _topic_path(topic: str) -> str:
    return topic.split("://", 1)[-1]


def _payload(avro: dict[str, Any]) -> dict[str, Any]:
    return {"type": "AVRO", "schema": json.dumps(avro), "properties": {}}


def _json(response: Any) -> dict[str, Any]:
    """The JSON object an admin call answered."""
    body = response.json()
    return body if isinstance(body, dict) else {"value": body}
