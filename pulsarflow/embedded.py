"""The embedded runtime: every engine and executor in one process, on in-memory backends.

The engines, codec and ``MessageHandler`` are the ones that run inside Pulsar; only the
transport and the state store are in memory. Every message is Avro-encoded on send and
decoded on receipt. The loop is single-threaded and driven by whoever waits: a client's
``result()`` runs it until the answer arrives, sleeping until the next timer when idle.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from pulsarflow.clock import Clock, SystemClock
from pulsarflow.codec import Codec
from pulsarflow.converter import JsonConverter, PayloadConverter
from pulsarflow.engines.tag import TagEngine
from pulsarflow.engines.workflow import WorkflowEngine
from pulsarflow.errors import BackendError
from pulsarflow.events import EventSink, Observer
from pulsarflow.events.memory import InMemoryEventStore
from pulsarflow.events.metrics import Metrics
from pulsarflow.events.recorder import recorder_for
from pulsarflow.messages import DeadLetter
from pulsarflow.runtime.batch import BatchHandler
from pulsarflow.runtime.executor import TaskExecutor
from pulsarflow.runtime.handler import MessageHandler
from pulsarflow.sdk.client import Client
from pulsarflow.sdk.registry import Registry
from pulsarflow.storage import StateStore
from pulsarflow.storage.memory import InMemoryStateStore
from pulsarflow.topics import Topics
from pulsarflow.transport.memory import InMemoryTransport

log = logging.getLogger("pulsarflow.embedded")
BACKEND_RETRY_MS = 1_000  # a message whose backend was unreachable comes back after this delay


class EmbeddedEnvironment:
    """Runs workflows in this process. ``fail_fast`` re-raises handler crashes and dead letters."""

    def __init__(self, *items: Any, clock: Clock | None = None, store: StateStore | None = None,
                 tag_store: StateStore | None = None, batch_size: int = 1,
                 converter: PayloadConverter | None = None, topics: Topics | None = None,
                 fail_fast: bool = False, duplicate_messages: bool = False,
                 events: EventSink | bool | None = None, metrics: Metrics | None = None) -> None:
        self.clock = clock or SystemClock()
        self.codec = Codec()
        self.converter = converter or JsonConverter()
        self.topics = topics or Topics()
        self.registry = Registry(items)
        self.store = store if store is not None else InMemoryStateStore()
        self.transport = InMemoryTransport(self.clock, duplicate=duplicate_messages)
        self.fail_fast = fail_fast
        self.dead_letters: list[DeadLetter] = []
        self.processed = 0
        # Where every event goes; True: a new InMemoryEventStore. Off by default (docs/visibility.md).
        self.events: EventSink | None = InMemoryEventStore() if events is True else (
            None if isinstance(events, bool) else events)
        self.metrics = metrics
        engine = WorkflowEngine(self.registry, self.converter, self.topics)
        self._executor = TaskExecutor(self.registry, self.converter, self.topics, self.clock)
        observer = recorder_for(self.clock, self.events, metrics)
        self._workflows = self._handler(engine, self.store, observer)
        self._tasks = self._handler(self._executor, None, observer)
        # Tag buckets are kept apart from workflow states (a workflow id may look like a tag key).
        self.tag_store = tag_store if tag_store is not None else InMemoryStateStore()
        self._tags = self._handler(TagEngine(self.topics), self.tag_store, None)
        self._listeners: dict[str, Callable[[bytes], None]] = {}
        # batch_size > 1 handles up to that many ready messages per engine at once, as a
        # worker process does (runtime/batch.py); 1 handles them one by one, as a Function.
        self.batch_size = batch_size

    def register(self, *items: Any) -> None:
        self.registry.register(*items)

    def client(self) -> Client:
        return Client(_EmbeddedConnection(self), self.codec, self.topics, self.converter, self.registry)

    def step(self) -> bool:
        """Process one ready message (or one batch); False when none is ready."""
        if self.batch_size > 1:
            return self._step_batch()
        delivery = self.transport.poll()
        if delivery is None:
            return False
        self.processed += 1
        self._deliver(delivery.topic, delivery.key, delivery.payload, self._route(delivery.topic))
        return True

    def _step_batch(self) -> bool:
        deliveries: list[Any] = []
        while len(deliveries) < self.batch_size and (delivery := self.transport.poll()) is not None:
            deliveries.append(delivery)
        if not deliveries:
            return False
        self.processed += len(deliveries)
        groups: dict[str, list[Any]] = {}
        for d in deliveries:
            groups.setdefault(d.topic, []).append(d)
        for topic, group in groups.items():
            engine = self._engine_for(topic)
            if engine is None or len(group) == 1:
                for d in group:
                    self._deliver(d.topic, d.key, d.payload, self._route(topic))
                continue
            try:
                BatchHandler(engine).handle_batch([(d.topic, d.payload) for d in group])
            except Exception:
                if self.fail_fast:
                    raise
                for d in group:  # the batch is not acknowledged: each message comes back, alone
                    self.transport.send(d.topic, d.key, d.payload, self.clock.now_ms() + BACKEND_RETRY_MS)
        return True

    def _deliver(self, topic: str, key: str, payload: bytes, route: Callable[[str, bytes], None]) -> None:
        try:
            route(topic, payload)
        except BackendError as exc:  # the store or broker is down: keep the message and try it again later
            log.error("handler for %s could not reach a backend, retrying in %d ms: %s", topic, BACKEND_RETRY_MS, exc)
            self.transport.send(topic, key, payload, self.clock.now_ms() + BACKEND_RETRY_MS)
            if self.fail_fast:
                raise
        except Exception as exc:
            if self.fail_fast:
                raise
            log.exception("handler for %s crashed", topic)
            self._workflows.dead_letter(topic, payload, f"handler crashed: {type(exc).__name__}: {exc}")

    def pump(self, done: Callable[[], bool], timeout_s: float | None = None) -> bool:
        """Run until ``done()``; sleep until the next timer when idle. False on timeout or when stuck."""
        deadline = None if timeout_s is None else self.clock.now_ms() + int(timeout_s * 1000)
        while not done():
            if self.step():
                continue
            due = self.transport.next_due_ms()
            if due is None:
                return done()  # nothing left to run in this process: waiting would never end
            if deadline is not None and due > deadline:
                self.clock.sleep_until(deadline)
                return done()
            self.clock.sleep_until(due)
        return True

    def run_until_idle(self, max_messages: int = 1_000_000) -> int:
        """Process messages and due timers until none remain; returns how many were processed."""
        start = self.processed
        while self.processed - start < max_messages:
            if not self.step():
                due = self.transport.next_due_ms()
                if due is None:
                    break
                self.clock.sleep_until(due)
        return self.processed - start

    def close(self) -> None:
        self._executor.close()

    # -- internals ------------------------------------------------------------------------

    def _handler(self, engine: Any, store: StateStore | None, observer: Observer | None) -> MessageHandler:
        return MessageHandler(engine, self.codec, self.transport, self.clock, store, self.topics.dead_letters,
                              observer)

    def _route(self, topic: str) -> Callable[[str, bytes], None]:
        engine = self._engine_for(topic)
        if engine is not None:
            return engine.handle
        if topic == self.topics.dead_letters:
            return self._on_dead_letter
        listener = self._listeners.get(topic)
        if listener is not None:
            return lambda _topic, payload: listener(payload)
        return _nobody_listens  # a client that went away (non-persistent on Pulsar too)

    def _engine_for(self, topic: str) -> MessageHandler | None:
        if topic == self.topics.workflow_engine:
            return self._workflows
        if topic == self.topics.tag_engine:
            return self._tags
        if topic == self.topics.dead_letters or topic in self._listeners or topic.startswith(self.topics.client("")):
            return None
        return self._tasks  # every executor topic (and the cancellations): one executor serves all services

    def _on_dead_letter(self, topic: str, payload: bytes) -> None:
        letter = self.codec.decode(DeadLetter, payload)
        self.dead_letters.append(letter)
        if self.fail_fast:
            raise RuntimeError(f"message from {letter.topic} dead-lettered: {letter.reason}")


def _nobody_listens(topic: str, payload: bytes) -> None:
    log.debug("dropping an answer for %s: no client listens there", topic)


class _EmbeddedConnection:
    def __init__(self, env: EmbeddedEnvironment) -> None:
        self.env = env

    def send(self, topic: str, key: str, payload: bytes) -> None:
        self.env.transport.send(topic, key, payload)

    def listen(self, topic: str, on_message: Callable[[bytes], None]) -> None:
        self.env._listeners[topic] = on_message

    def wait(self, done: Callable[[], bool], timeout_s: float | None) -> bool:
        return self.env.pump(done, timeout_s)
