"""Running on Pulsar outside Functions: a client connection and a task worker process.

    client = pulsarflow.worker.connect("pulsar://127.0.0.1:6650", modules=["shop.flows"])
    pulsarflow worker --service-url pulsar://127.0.0.1:6650 --modules shop.tasks

The worker runs task executors on a Shared subscription (scale out by starting more);
the engines themselves run as Pulsar Functions (see functions.yaml).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import pulsar

from pulsarflow.codec import Codec
from pulsarflow.deploy.manifest import subscription_name
from pulsarflow.errors import BackendError, DefinitionError
from pulsarflow.events.metrics import Metrics
from pulsarflow.functions import build_handler
from pulsarflow.runtime.handler import MessageHandler
from pulsarflow.sdk.client import Client
from pulsarflow.topics import Topics
from pulsarflow.transport.pulsar import PulsarTransport
from pulsarflow.usercode import load_registry

log = logging.getLogger("pulsarflow.worker")

PREFETCH = 10  # tasks a worker holds back from other workers while it runs one
NACK_DELAY_MS = 1_000  # a failed publish is retried this soon (the client default is 60 s)


class PulsarConnection:
    """A client's link to the engines: publish to the engine topic, listen on its own topic."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.transport = PulsarTransport(client)
        self._changed = threading.Condition()
        self._consumers: list[Any] = []

    def send(self, topic: str, key: str, payload: bytes) -> None:
        self.transport.send(topic, key, payload)
        self.transport.flush()

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


def connect(service_url: str, modules: Iterable[str] = (), topics: Topics | None = None) -> Client:
    """A Client over Pulsar. ``modules`` lets it check workflow names and decode typed results."""
    pulsar_client = pulsar.Client(service_url, logger=_client_logger())
    registry = load_registry(modules) if modules else None
    return Client(PulsarConnection(pulsar_client), Codec(), topics or Topics(), registry=registry)


def run_worker(service_url: str, modules: list[str], topics: Topics, stop: threading.Event,
               services: Iterable[str] | None = None, prefetch: int = PREFETCH,
               metrics: Metrics | None = None) -> None:
    """Consume executor topics and run tasks until ``stop`` is set.

    The worker joins the executor functions' subscription of each service topic, so
    workers and executor functions share the tasks instead of each running all of them.
    After ``stop`` the task in hand finishes and is acknowledged before the worker exits.
    """
    names = sorted(services or load_registry(modules).services())
    if not names:
        raise DefinitionError(f"the modules {modules} define no task; pass the modules holding your @task "
                              "functions (--modules), or the services to serve")
    config = {"engine": "executor", "modules": ",".join(modules), "tenant": topics.tenant,
              "namespace": topics.namespace, "app": topics.app}
    client = pulsar.Client(service_url, logger=_client_logger())
    try:
        handler = build_handler(config, client, None, metrics)
        consumer = client.subscribe([topics.executor(s) for s in names], subscription_name(topics, "executor"),
                                    consumer_type=pulsar.ConsumerType.Shared,
                                    initial_position=pulsar.InitialPosition.Earliest,
                                    receiver_queue_size=prefetch, negative_ack_redelivery_delay_ms=NACK_DELAY_MS)
    except Exception as exc:
        client.close()
        if isinstance(exc, DefinitionError):
            raise
        raise BackendError(f"cannot subscribe to the task topics of {names} at {service_url}: {exc}") from exc
    log.info("worker serving %s", names)
    try:
        _serve(consumer, handler, stop)
    finally:
        consumer.close()
        handler.engine.close()  # type: ignore[attr-defined]
        client.close()
        log.info("worker stopped")


def _serve(consumer: Any, handler: MessageHandler, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            message = consumer.receive(timeout_millis=200)
        except pulsar.Timeout:
            continue
        try:
            handler.handle(message.topic_name(), message.data())
        except Exception:
            log.exception("task message failed; it will be redelivered")
            consumer.negative_acknowledge(message)
        else:
            consumer.acknowledge(message)


def _client_logger() -> Any:
    """The Pulsar client's own log: warnings and errors only, on stderr.

    A Python ``logging.Logger`` would receive every debug line of the client through the
    GIL, and the client falls back to its own debug-level logger while the interpreter
    exits (which aborted the worker process in tests); the console logger has neither problem.
    """
    return pulsar.ConsoleLogger(pulsar.LoggerLevel.Warn)
