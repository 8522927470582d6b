"""Building the service behind the CLI and the dashboard from a store URL and, optionally, Pulsar."""

from __future__ import annotations

from pulsarflow.pulsar.connection import ConnectionConfig
from pulsarflow.topics import Topics
from pulsarflow.visibility.service import VisibilityService
from pulsarflow.visibility.stores import open_store


def connect_service(store_url: str, service_url: str | ConnectionConfig | None, tenant: str = "public",
                    namespace: str = "default", app: str = "pulsarflow") -> VisibilityService:
    """Read ``store_url``; with ``service_url`` (a URL or a ConnectionConfig), feed it from the events topic.

    It also connects a client, for signal, cancel and retry. A memory store starts empty, so it
    is rebuilt by replaying the topic; a persistent one (SQLite, Redis) catches up through the
    durable subscription ``<app>-visibility``.
    """
    store = open_store(store_url)
    if service_url is None:
        return VisibilityService(store)
    from pulsarflow.pulsar.events_feed import PulsarEventFeed
    from pulsarflow.pulsar.worker import connect, pulsar_client_of

    topics = Topics(tenant, namespace, app)
    client = connect(service_url, topics=topics)
    feed = PulsarEventFeed(pulsar_client_of(client), topics.events, store, f"{app}-visibility")
    if store_url.startswith("memory:"):
        feed.replay()
        return VisibilityService(store, client)
    return VisibilityService(store, client, refresh=feed.drain)
