"""Running on Pulsar outside Functions: a client connection and a task worker process.

    client = pulsarflow.pulsar.worker.connect("pulsar://127.0.0.1:6650", modules=["shop.flows"])
    pulsarflow worker --service-url pulsar://127.0.0.1:6650 --modules shop.tasks

The worker runs task executors on a Shared subscription (scale out by starting more);
the engines run as Pulsar Functions (see functions.yaml), or in worker processes too
(``pulsarflow worker --engine ...``, see ``pulsarflow.pulsar.engine_worker``).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from pulsarflow.codec import Codec
from pulsarflow.converter import PayloadConverter
from pulsarflow.errors import DefinitionError
from pulsarflow.events.metrics import Metrics
from pulsarflow.pulsar.connection import ConnectionConfig, as_config
from pulsarflow.pulsar.engine_worker import PREFETCH, client_logger, run_engine
from pulsarflow.pulsar.registry import engines_release
from pulsarflow.pulsar.transport import PulsarTransport
from pulsarflow.runtime.limits import DEFAULT_MAX_MESSAGE_BYTES
from pulsarflow.sdk.client import Client
from pulsarflow.topics import Topics
from pulsarflow.usercode import load_registry

RELEASE_CHECK_S = 30.0  # how long a client trusts what the registry said of the engines' release


class PulsarConnection:
    """A client's link to the engines: publish to the engine topic, listen on its own topic."""

    def __init__(self, client: Any, codec: Codec | None = None) -> None:
        self.client = client
        self.codec = codec or Codec()
        self.transport = PulsarTransport(client, self.codec)
        self._releases: dict[str, tuple[str | None, float]] = {}  # topic -> (its engines' release, until when)
        self._changed = threading.Condition()
        self._consumers: list[Any] = []

    def send(self, topic: str, key: str, payload: bytes) -> None:
        self.transport.send(topic, key, payload)
        self.transport.flush()

    def engines_release(self, topic: str) -> str | None:
        """As the topic's registered schema says, asked again every RELEASE_CHECK_S (a deploy changes it)."""
        known = self._releases.get(topic)
        if known is None or known[1] < time.monotonic():
            known = (engines_release(self.client, self.codec, topic), time.monotonic() + RELEASE_CHECK_S)
            self._releases[topic] = known
        return known[0]

    def listen(self, topic: str, on_message: Callable[[bytes], None]) -> None:
        def deliver(consumer: Any, message: Any) -> None:
            with self._changed:
                on_message(message.data())
                self._changed.notify_all()
            consumer.acknowledge(message)

        self._consumers.append(self.client.subscribe(
            topic, f"client-{uuid.uuid4().hex[:8]}", message_listener=deliver))

    def wait(self, done: Callable[[], bool], timeout_s: float | None) -> bool:
        with self._changed:
            return self._changed.wait_for(done, timeout_s)

    def close(self) -> None:
        for consumer in self._consumers:
            consumer.close()
        self.transport.close()
        self.client.close()


def connect(service_url: str | ConnectionConfig, modules: Iterable[str] = (), topics: Topics | None = None,
            max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES, converter: PayloadConverter | None = None) -> Client:
    """A Client over Pulsar (a broker URL or a ConnectionConfig). ``modules`` checks workflow names, decodes results.

    ``max_message_bytes`` is the broker's ``maxMessageSize``: a request that would not fit
    is refused before it is sent (LimitExceededError). ``converter``: the payload converter
    (JSON by default), e.g. the same ``CodecChain`` the engines' ``payload_codecs`` build.
    """
    pulsar_client = as_config(service_url).client(logger=client_logger())
    registry = load_registry(modules) if modules else None
    codec = Codec()
    return Client(PulsarConnection(pulsar_client, codec), codec, topics or Topics(), converter, registry=registry,
                  max_message_bytes=max_message_bytes)


def pulsar_client_of(client: Client) -> Any:
    """The ``pulsar.Client`` under a Client made by :func:`connect` (to subscribe beside it, e.g. a feed)."""
    connection = client.connection
    if not isinstance(connection, PulsarConnection):
        raise DefinitionError(f"this client talks to its engines through {type(connection).__name__}, not Pulsar; "
                              "make it with pulsarflow.pulsar.worker.connect(...)")
    return connection.client


def run_worker(service_url: str | ConnectionConfig, modules: list[str], topics: Topics, stop: threading.Event,
               services: Iterable[str] | None = None, prefetch: int = PREFETCH,
               metrics: Metrics | None = None) -> None:
    """Consume executor topics and run tasks, one at a time, until ``stop`` is set.

    The worker joins the executor functions' subscription of each service topic, so
    workers and executor functions share the tasks instead of each running all of them.
    After ``stop`` the task in hand finishes and is acknowledged before the worker exits.
    (``pulsarflow.pulsar.engine_worker.run_engine`` with a batch of one.)
    """
    run_engine(service_url, "executor", modules, topics, stop, services=services, batch=1, prefetch=prefetch,
               metrics=metrics)
