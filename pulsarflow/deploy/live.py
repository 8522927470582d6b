"""Where a deployed app's running workflows are, from its manifest: the state store and an index of ids.

- ``state: function``: the workflow engine function's state, read key by key through the
  admin REST API (the same layout ``FunctionStateStore`` writes), with the ids from the
  app's events topic (:class:`~pulsarflow.deploy.running.EventsTopicIndex`). This needs
  the events on (``events: off`` in the engine's config leaves nothing to find the ids
  with) and the broker's service URL.
- ``state: redis``: the engine's Redis keys, scanned and read directly. A URL kept in a
  function secret (``redis_url_secret``) cannot be read by the deploy tool: pass it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

from pulsarflow.deploy import manifest as mf
from pulsarflow.deploy.admin import PulsarAdmin
from pulsarflow.deploy.running import EventsTopicIndex, RedisKeyIndex, WorkflowIndex
from pulsarflow.errors import BackendError, DefinitionError, PulsarflowError
from pulsarflow.pulsar.connection import ConnectionConfig, as_config
from pulsarflow.storage import StateStore


@dataclass(frozen=True)
class Connection:
    """How to reach a deployed app: Pulsar (its admin REST API and broker), and Redis (``state: redis``)."""

    pulsar: ConnectionConfig = field(default_factory=ConnectionConfig)
    # Instead of the manifest's (needed when it names a secret); it may hold a password.
    redis_url: str | None = field(default=None, repr=False)

    @property
    def admin_url(self) -> str:
        return self.pulsar.require_admin_url()

    @property
    def service_url(self) -> str:
        return self.pulsar.require_service_url()


@dataclass
class LiveSource:
    """An index of the ids that may be running and the store that holds them; None when none can run."""

    index: WorkflowIndex | None
    store: StateStore | None
    notes: list[str] = field(default_factory=list)


class AdminStateContext:
    """A function's state read through the admin REST API, as the Context ``FunctionStateStore`` reads.

    ``FunctionStateStore.get_many`` reads from several threads: each thread has its own session.
    """

    def __init__(self, admin_url: str | ConnectionConfig, tenant: str, namespace: str, function_name: str) -> None:
        self.config, self.tenant, self.namespace, self.name = as_config(admin_url), tenant, namespace, function_name
        self._local = threading.local()

    def get_state(self, key: str) -> bytes | None:
        _check_readable(key)
        admin = getattr(self._local, "admin", None)
        if admin is None:
            admin = self._local.admin = PulsarAdmin(self.config)
        found = admin.function_state(self.tenant, self.namespace, self.name, key)
        if found is None:
            return None
        if found.get("key") != key or "stringValue" not in found:
            raise BackendError(f"the admin API answered for {key!r} with something else than its text value "
                               f"(key {found.get('key')!r}, fields {sorted(found)})")
        return str(found["stringValue"] or "").encode()


def _check_readable(key: str) -> None:
    """Keys the admin REST API cannot address (measured on 4.0.8), refused instead of misread."""
    if "\0" in key:
        raise BackendError("the key holds \\0 (the chunks of a state over 512 KiB do), which the admin REST API "
                           "refuses (HTTP 400), so this state cannot be read from outside the function")
    if key in (".", ".."):
        raise BackendError(f"the admin REST API cannot address the key {key!r} (the URL path is normalized)")


def workflow_function(manifest: mf.Manifest) -> mf.FunctionSpec | None:
    return next((f for f in manifest.functions if f.engine == "workflow"), None)


@contextmanager
def live_source(manifest: mf.Manifest, admin: PulsarAdmin, connection: Connection) -> Iterator[LiveSource]:
    """The running workflows' index and store for ``manifest``; connections closed afterwards."""
    with ExitStack() as closing:
        if manifest.state == "redis":
            yield _redis_source(manifest, connection, closing)
        else:
            yield _function_source(manifest, admin, connection, closing)


def _redis_source(manifest: mf.Manifest, connection: Connection, closing: ExitStack) -> LiveSource:
    from pulsarflow.redaction import redact
    from pulsarflow.storage.redis import RedisStateStore, key_prefix

    url = connection.redis_url or manifest.redis_url
    if not url:
        # Some secrets providers take the value itself as the secret's name: never print a password.
        secret = redact(str(manifest.redis_url_secret))
        raise DefinitionError(
            f"state: redis keeps the Redis URL in the function secret {secret!r}, which the "
            "deploy tool cannot read; pass --redis-url (or set PULSARFLOW_REDIS_URL) so that the running "
            "workflows can be replayed, or skip that check with --no-replay-check")
    store = RedisStateStore.from_url(url, prefix=key_prefix(manifest.topics, "workflow"))
    closing.callback(store.close)
    return LiveSource(RedisKeyIndex(store.client, store.prefix), store)


def _function_source(manifest: mf.Manifest, admin: PulsarAdmin, connection: Connection,
                     closing: ExitStack) -> LiveSource:
    from pulsarflow.pulsar.function_state import FunctionStateStore

    t = manifest.topics
    spec = workflow_function(manifest)
    if spec is None:
        return LiveSource(None, None, ["the manifest has no workflow engine function: no run to replay"])
    if admin.function(t.tenant, t.namespace, spec.name) is None:
        return LiveSource(None, None, [f"{spec.name} is not deployed yet: no run in flight"])
    if str(spec.config.get("events", "topic")) == "off":
        raise DefinitionError(
            f"{spec.name} publishes no events (events: off) and Pulsar function state cannot list its keys, so "
            "the running workflows cannot be found; turn the events on, use state: redis, or skip the replay "
            "check with --no-replay-check")
    if not admin.topic_exists(t.events):
        raise BackendError(f"{t.events} does not exist, so the running workflows of {spec.name} cannot be "
                           "found; skip the replay check with --no-replay-check")
    client = _pulsar_client(connection.pulsar)
    closing.callback(client.close)
    context = AdminStateContext(connection.pulsar, t.tenant, t.namespace, spec.name)
    store = FunctionStateStore(context)
    return LiveSource(EventsTopicIndex(client, t.events), store, _retention_notes(admin, t.events))


def _retention_notes(admin: PulsarAdmin, topic: str) -> list[str]:
    kept = admin.retention(topic) or {}
    if kept.get("retentionTimeInMinutes") == -1 and kept.get("retentionSizeInMB") == -1:
        return []
    return [f"{topic} is not retained without limit ({kept or 'no topic policy'}): a run whose events were "
            "dropped is not found (pulsarflow deploy apply sets an unlimited retention)"]


def _pulsar_client(config: ConnectionConfig) -> Any:
    try:
        import pulsar  # noqa: F401  (only to say which extra is missing)
    except ImportError as exc:
        raise DefinitionError("reading the events topic needs pulsar-client: pip install 'pulsarflow[pulsar]'") \
            from exc
    from pulsarflow.pulsar.engine_worker import client_logger

    try:
        return config.client(logger=client_logger())
    except PulsarflowError:
        raise
    except Exception as exc:
        raise BackendError(f"cannot connect to {config.service_url}: {type(exc).__name__}: {exc}; is Pulsar running?") \
            from exc
