"""The base of every pulsarflow Pulsar Function: build the shared runtime from the Context.

A function's ``userConfig`` (see functions.yaml) says what it runs::

    engine: workflow | tag | executor which engine this function is
    modules: "shop.tasks,shop.flows"  user modules holding the tasks and workflows
    tenant / namespace / app          topic naming (see pulsarflow.topics.Topics)
    state: function | redis           state backend of the workflow engine (redis_url, retention_ms)
    events: topic | off               publish every event to the app's events topic (default: topic)
    max_message_bytes: 5242880        the broker's maxMessageSize (dead letters and outgoing messages fit it)
    workflow_cache: 1000              live workflows the workflow engine keeps between messages (0: off)
    payload_codecs: zlib,aesgcm,claim codecs for user payloads (pulsarflow.payloads.chain_from_config)
    outcomes: function | redis | off  where an executor keeps its outcome markers (runtime/outcomes.py)
    service: payments                 the service an executor serves (its flow-control limits are that service's)
    max_concurrent / max_starts_per_second   an executor's limits across all its instances (docs/flow-control.md;
                                      flow_store: function | redis, flow_lease_ms, flow_retry_ms)
    batch: 100                        messages handled together (the deploy tool then turns autoAck off)

The userConfig is read and checked once, as a ``pulsarflow.runtime.config.RuntimeConfig``, and
the runtime is built from it by ``pulsarflow.runtime.builder``, as the embedded runtime and the
worker processes build theirs. The entry points in ``functions/`` subclass :class:`EngineFunction` and add nothing.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Mapping
from typing import Any

from pulsarflow.clock import SystemClock
from pulsarflow.codec import Codec
from pulsarflow.errors import DefinitionError
from pulsarflow.events.metrics import Metrics
from pulsarflow.events.recorder import recorder_for
from pulsarflow.events.topic import TopicEventSink
from pulsarflow.payloads import chain_from_config
from pulsarflow.pulsar.cancellations import follow as follow_cancellations
from pulsarflow.pulsar.deadletters import retain as retain_dead_letters
from pulsarflow.pulsar.function_state import ContextCounters
from pulsarflow.pulsar.registry import registry_writers
from pulsarflow.pulsar.transport import PulsarTransport
from pulsarflow.runtime.batch import BatchHandler
from pulsarflow.runtime.builder import build_engine
from pulsarflow.runtime.builder import build_handler as runtime_handler
from pulsarflow.runtime.config import RuntimeConfig, as_runtime_config
from pulsarflow.runtime.flow import FlowLimit, store_from_config
from pulsarflow.runtime.flow_counters import CounterFlowLeases
from pulsarflow.runtime.flow_gate import FlowGate
from pulsarflow.runtime.flow_leases import FlowLeases
from pulsarflow.runtime.handler import MessageHandler
from pulsarflow.runtime.loop import BatchLoop
from pulsarflow.runtime.outcomes import Outcomes, OutcomeStore, WatchedTransport
from pulsarflow.runtime.policy import call_with_backoff
from pulsarflow.storage import StateStore
from pulsarflow.storage.outcomes import outcome_store_from_config
from pulsarflow.usercode import load_registry

log = logging.getLogger("pulsarflow.pulsar.function")

try:
    from pulsar import Function, SerDe
except ImportError:  # pragma: no cover - only inside the Pulsar Functions runtime
    Function = SerDe = object


class RawBytesSerDe(SerDe):
    """Hands ``process`` the message bytes untouched (the default SerDe turns b'42' into 42)."""

    def serialize(self, input: bytes) -> bytes:
        return bytes(input)

    def deserialize(self, input_bytes: bytes) -> bytes:
        return bytes(input_bytes)


def build_handler(config: RuntimeConfig | Mapping[str, Any], client: Any, state_store: StateStore | None,
                  metrics: Metrics | None = None, outcomes: OutcomeStore | None = None,
                  secret: Callable[[str], str | None] | None = None, flow_leases: FlowLeases | None = None,
                  flow: Mapping[str, FlowLimit] | None = None) -> MessageHandler:
    """The MessageHandler a function, a worker (or a test) runs, from its RuntimeConfig or userConfig."""
    config = as_runtime_config(config)
    topics, clock = config.topics, SystemClock()
    registry = load_registry(list(config.modules))
    recorder = gate = None
    if config.engine == "executor":
        if outcomes is not None:
            recorder = Outcomes(outcomes, check_after_ms=config.outcome_check_after_ms,
                                always=config.outcome_lookups_always)
        gate = flow_gate(config, flow_leases, flow)
    engine = build_engine(config, registry, chain_from_config(config.raw, secret), clock, recorder, gate)
    if config.engine == "executor":
        follow_cancellations(client, topics.cancellations, Codec(), engine.cancellations)
    # Writer identities no frozen release knows (a newer release wrote them) are looked up in the registry.
    codec = Codec(writers=registry_writers(client, topics, {t.service for t in registry.tasks.values()}))
    transport: Any = PulsarTransport(client, codec)
    if recorder is not None:  # markers are written once the broker acknowledged the outcomes
        transport = WatchedTransport(transport, recorder)
    # The tag index is bookkeeping: the workflows' own events already say what it records.
    sink = TopicEventSink(transport, codec, topics.events) if config.events and config.engine != "tag" else None
    retain_dead_letters(client, topics.dead_letters)
    return runtime_handler(config, engine, codec, transport, clock, state_store, recorder_for(clock, sink, metrics))


def flow_gate(config: RuntimeConfig, leases: FlowLeases | None,
              flow: Mapping[str, FlowLimit] | None) -> FlowGate | None:
    """An executor's flow gate: the limits given (a worker's), or those of its userConfig for its service."""
    limits = dict(flow or {})
    if config.flow is not None and config.service:
        limits[config.service] = config.flow
    if not limits:
        return None
    if leases is None:
        raise DefinitionError("flow-control limits need leases shared by the executors (function state or Redis)")
    gate = FlowGate(leases, limits, config.topics, SystemClock())
    if getattr(leases, "clearer", False):
        gate.start()  # the clearer resets old counters even while no attempt of its own runs
    return gate


def flow_leases_for(config: RuntimeConfig, context: Any) -> FlowLeases | None:
    """Where an executor Function keeps its leases: its own state (counters), or Redis (``flow_store``)."""
    if config.flow is None:
        return None
    if store_from_config(config.raw) == "redis":
        from pulsarflow.storage.flow_redis import RedisFlowLeases

        url = context.get_secret("redis_url") if hasattr(context, "get_secret") else None
        if not url:
            raise DefinitionError("flow_store: redis needs the function secret redis_url (set redis_url or "
                                  "redis_url_secret at the top of functions.yaml)")
        return RedisFlowLeases.from_url(url, config.topics)
    return CounterFlowLeases(ContextCounters(context), SystemClock(), clearer=context.get_instance_id() == 0)


def state_store_for(config: dict[str, Any], context: Any) -> StateStore:
    """The workflow engine's store: ``state: function`` or ``state: redis`` (see storage.config)."""
    from pulsarflow.storage.config import state_store_from_config

    return state_store_from_config(config, context)


class EngineFunction(Function):
    """A stateful Pulsar Function running one pulsarflow engine over raw Avro bytes.

    With ``batch: N`` (userConfig, from functions.yaml; the deploy tool then turns autoAck
    off) ``process`` only queues the message: one background thread handles what has
    queued up, up to N at a time, through the BatchHandler (one flush and one round of
    state writes per batch), then acknowledges each message. The queue is bounded, so a
    slow batch holds ``process`` back; a crash leaves the queued messages unacknowledged,
    and they are delivered again.
    """

    def __init__(self) -> None:
        self._handler: MessageHandler | None = None
        self._batcher: _Batcher | None = None

    def process(self, input: bytes, context: Any) -> None:
        if self._handler is None:
            raw = dict(context.get_user_config_map())
            config = RuntimeConfig.from_user_config(raw)
            store = state_store_for(raw, context) if config.stateful else None
            executor = config.engine == "executor"
            outcomes = outcome_store_from_config(raw, context) if executor else None
            metrics = Metrics(reporter=context.record_metric)  # per-function latencies in the function's stats
            leases = flow_leases_for(config, context) if executor else None
            self._handler = build_handler(config, context.get_pulsar_client(), store, metrics, outcomes,
                                          secret=getattr(context, "get_secret", None), flow_leases=leases)
            if config.batch > 1:
                self._batcher = _Batcher(self._handler, context, config.batch)
        topic = context.get_current_message_topic_name()
        if self._batcher is not None:
            self._batcher.put(topic, input, context.get_message_id())
            return
        handler = self._handler
        # An outage is retried here, in growing steps, before the runtime's 60 s redelivery.
        call_with_backoff(lambda: handler.handle(topic, input))


class _Batcher:
    """Hands messages from ``process`` to one thread that handles them in batches, in arrival order.

    The thread runs the shared BatchLoop (runtime/loop.py): what met an outage is held and
    tried again after a short delay; what was handled or dead-lettered is acknowledged.
    """

    def __init__(self, handler: MessageHandler, context: Any, size: int) -> None:
        self.context = context
        self.queue: queue.Queue[tuple[str, bytes, Any]] = queue.Queue(maxsize=4 * size)
        self.loop = BatchLoop(BatchHandler(handler), self, size)
        threading.Thread(target=self.loop.run, name="pulsarflow-batcher", daemon=True).start()

    def put(self, topic: str, payload: bytes, message_id: Any) -> None:
        self.queue.put((topic, payload, message_id))

    # -- the loop's Inbox ---------------------------------------------------------------

    def take(self, room: int, wait_s: float) -> list[tuple[str, bytes, Any]]:
        try:
            items = [self.queue.get(timeout=wait_s) if wait_s > 0 else self.queue.get_nowait()]
        except queue.Empty:
            return []
        while len(items) < room:
            try:
                items.append(self.queue.get_nowait())  # only what is already there
            except queue.Empty:
                break
        return items

    @staticmethod
    def content(item: tuple[str, bytes, Any]) -> tuple[str, bytes]:
        return item[0], item[1]

    def ack(self, item: tuple[str, bytes, Any]) -> None:
        self.context.ack(item[2], item[0])

    def give_back(self, item: tuple[str, bytes, Any]) -> None:
        topic, _, message_id = item
        consumer = getattr(self.context, "consumers", {}).get(topic)
        if consumer is None:
            log.error("no consumer of %s to give a failed message back to; it returns when the instance "
                      "restarts", topic)
            return
        consumer.negative_acknowledge(message_id)
