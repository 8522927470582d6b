"""Engines in plain worker processes, handling messages in batches.

    pulsarflow worker --engine workflow --modules shop.flows --redis-url redis://127.0.0.1:6379/0
    pulsarflow worker --engine executor --modules shop.tasks --batch 100

The Pulsar Functions runtime hands a Python function one message at a time, so each
message costs its own state round trips and its own wait for the broker's acks. A
worker process instead receives up to ``batch`` messages at once and runs them through
:class:`~pulsarflow.runtime.batch.BatchHandler`: one state read and one state write per
batch (Redis pipelines), one wait for the broker, then the acknowledgements. The order
of the invariant is kept per batch: publish and wait for the acks, save, acknowledge.
Failures follow the shared policy (runtime/policy.py, runtime/loop.py): a message at fault
is dead-lettered and acknowledged, one that met an outage is held and tried again after a
short, growing delay.

Stateful engines (workflow, tag) consume their topic on a Key_Shared subscription, the
same one the engine Functions use: run more workers to scale out, with one writer per
key; their state lives in Redis (function state exists only inside Functions).
Executors consume the task topics of their services on a Shared subscription.

Flow-control limits (``flow={"payments": FlowLimit(max_concurrent=5)}``, from the worker
flags ``--max-concurrent payments=5`` and ``--max-starts-per-second payments=20`` through
``runtime.flow.limits_from_flags``) hold across every worker and Function of the service
when their leases are shared: in Redis (``--redis-url``), see docs/flow-control.md.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from typing import Any

import pulsar

from pulsarflow.errors import BackendError, DefinitionError
from pulsarflow.events.metrics import Metrics
from pulsarflow.pulsar.connection import ConnectionConfig, as_config
from pulsarflow.pulsar.function import build_handler
from pulsarflow.runtime.batch import BatchHandler
from pulsarflow.runtime.config import RuntimeConfig
from pulsarflow.runtime.flow import FlowLimit, checked_limits
from pulsarflow.runtime.flow_leases import FlowLeases
from pulsarflow.runtime.loop import BatchLoop
from pulsarflow.storage import StateStore
from pulsarflow.topics import Topics
from pulsarflow.usercode import load_registry

log = logging.getLogger("pulsarflow.pulsar.worker")

BATCH = 200  # messages handled together at most
PREFETCH = 10  # messages a worker holds back from other workers beyond its batch
NACK_DELAY_MS = 1_000  # a message given back after its held attempts comes back this soon (client default: 60 s)
ENGINES = ("workflow", "tag", "executor")


def engine_topics(engine: str, topics: Topics, modules: list[str], services: Iterable[str] | None) -> list[str]:
    if engine == "workflow":
        return [topics.workflow_engine]
    if engine == "tag":
        return [topics.tag_engine]
    names = sorted(services or load_registry(modules).services())
    if not names:
        raise DefinitionError(f"the modules {modules} define no task; pass the modules holding your @task "
                              "functions (--modules), or the services to serve")
    return [topics.executor(s) for s in names]


def run_engine(service_url: str | ConnectionConfig, engine: str, modules: list[str], topics: Topics,
               stop: threading.Event, store: StateStore | None = None, services: Iterable[str] | None = None,
               batch: int = BATCH, metrics: Metrics | None = None, events: str = "topic",
               prefetch: int = PREFETCH, flow: Mapping[str, FlowLimit] | None = None,
               flow_leases: FlowLeases | None = None) -> None:
    """Run ``engine`` over its topics in batches until ``stop`` is set (then finish the batch in hand).

    ``flow``: limits per service (executors only), on ``flow_leases``, by default in the Redis of ``store``.
    """
    if engine not in ENGINES:
        raise DefinitionError(f"engine must be one of {list(ENGINES)}, got {engine!r}")
    if engine != "executor" and store is None:
        raise DefinitionError(f"the {engine} engine needs a state store in a worker process: pass --redis-url "
                              "(Pulsar function state is only reachable from inside a Function)")
    sources = engine_topics(engine, topics, modules, services)
    leases = worker_leases(engine, checked_limits(flow), store, topics, flow_leases)
    if events not in ("topic", "off"):
        raise DefinitionError(f"events must be 'topic' or 'off', got {events!r}")
    config = RuntimeConfig(engine, topics, tuple(modules), events=events == "topic", batch=batch)
    connection = as_config(service_url)
    client = connection.client(logger=client_logger())
    try:
        handler = build_handler(config, client, store if engine != "executor" else None, metrics,
                                flow_leases=leases, flow=flow)
        consumer = client.subscribe(
            sources, topics.subscription(engine),
            consumer_type=pulsar.ConsumerType.Shared if engine == "executor" else pulsar.ConsumerType.KeyShared,
            initial_position=pulsar.InitialPosition.Earliest, receiver_queue_size=max(batch, prefetch),
            negative_ack_redelivery_delay_ms=NACK_DELAY_MS)
    except Exception as exc:
        client.close()
        if isinstance(exc, DefinitionError):
            raise
        raise BackendError(f"cannot subscribe to {sources} at {connection.service_url}: {exc}") from exc
    log.info("%s worker serving %s, batches of up to %d", engine, sources, batch)
    try:
        serve(consumer, BatchHandler(handler), stop, batch)
    finally:
        consumer.close()
        close = getattr(handler.engine, "close", None)
        if close is not None:
            close()
        client.close()
        log.info("%s worker stopped", engine)


def worker_leases(engine: str, limits: Mapping[str, FlowLimit], store: StateStore | None, topics: Topics,
                  leases: FlowLeases | None) -> FlowLeases | None:
    """The leases a worker's limits are kept on: those given, else in the Redis of ``store``."""
    if not limits:
        return leases
    if engine != "executor":
        raise DefinitionError(f"flow-control limits apply to executors, not to the {engine} engine")
    if leases is not None:
        return leases
    from pulsarflow.storage.redis import RedisStateStore

    if not isinstance(store, RedisStateStore):
        raise DefinitionError(f"limits for {sorted(limits)} must hold across every worker of the service: pass "
                              "--redis-url, where the workers share their leases")
    from pulsarflow.storage.flow_redis import RedisFlowLeases

    return RedisFlowLeases(store.client, topics, store.where)


def serve(consumer: Any, batch: BatchHandler, stop: threading.Event, size: int = BATCH) -> None:
    """Handle what has arrived, in batches: wait for a first message, then take whatever else
    is already there (no waiting), so that a quiet system adds no latency and a busy one
    handles up to ``size`` messages per state round trip and flush."""
    BatchLoop(batch, ConsumerInbox(consumer), size).run(stop)


class ConsumerInbox:
    """A consumer as the BatchLoop's inbox."""

    def __init__(self, consumer: Any) -> None:
        self.consumer = consumer

    def take(self, room: int, wait_s: float) -> list[Any]:
        try:
            messages = [self.consumer.receive(timeout_millis=max(int(wait_s * 1000), 0))]
        except pulsar.Timeout:
            return []
        while len(messages) < room:
            try:
                messages.append(self.consumer.receive(timeout_millis=0))  # only what is already queued
            except pulsar.Timeout:
                break
        return messages

    @staticmethod
    def content(message: Any) -> tuple[str, bytes]:
        return message.topic_name(), message.data()

    def ack(self, message: Any) -> None:
        self.consumer.acknowledge(message)

    def give_back(self, message: Any) -> None:
        self.consumer.negative_acknowledge(message)


def client_logger() -> Any:
    """The Pulsar client's own log: warnings and errors only, on stderr.

    A Python ``logging.Logger`` would receive every debug line of the client through the
    GIL, and the client falls back to its own debug-level logger while the interpreter
    exits (which aborted the worker process in tests); the console logger has neither problem.
    """
    return pulsar.ConsoleLogger(pulsar.LoggerLevel.Warn)
