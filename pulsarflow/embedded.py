"""The embedded runtime: every engine and executor in one process, on in-memory backends.

The engines, codec and ``MessageHandler`` are the ones that run inside Pulsar; only the
transport and the state store are in memory (or both in Redis, which makes the runtime
durable: see ``transport/choice.py``). Every message is Avro-encoded on send and
decoded on receipt. The loop is single-threaded and driven by whoever waits: a client's
``result()`` runs it until the answer arrives, sleeping until the next timer when idle (on a
virtual clock: moving to it at once), and ``run_until_idle()`` runs what is due now.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping
from typing import Any

from pulsarflow.clock import Clock, SystemClock, VirtualClock, WallTimer
from pulsarflow.codec import Codec
from pulsarflow.converter import JsonConverter, PayloadConverter
from pulsarflow.engines.outgoing import Decision
from pulsarflow.errors import BackendError, PartialBatchError, WorkflowBlockedError
from pulsarflow.events import EventSink, Observer
from pulsarflow.events.memory import InMemoryEventStore
from pulsarflow.events.metrics import Metrics
from pulsarflow.events.recorder import recorder_for
from pulsarflow.interpreter.registry import Registry
from pulsarflow.messages import DeadLetter
from pulsarflow.runtime.batch import BatchHandler
from pulsarflow.runtime.builder import build_engine, build_handler
from pulsarflow.runtime.config import ENGINES, RuntimeConfig
from pulsarflow.runtime.executor import TaskExecutor
from pulsarflow.runtime.flow import FlowLimit, whole_number
from pulsarflow.runtime.flow_gate import FlowGate, gate_for
from pulsarflow.runtime.flow_leases import FlowLeases
from pulsarflow.runtime.flow_pool import ExecutorThreads, LockedQueue, settled
from pulsarflow.runtime.handler import MessageHandler
from pulsarflow.runtime.waits import WaitEnd
from pulsarflow.sdk.client import Client
from pulsarflow.storage import StateStore
from pulsarflow.storage.memory import InMemoryStateStore
from pulsarflow.topics import Topics
from pulsarflow.transport.choice import TransportOption, queue_for, tag_store_for
from pulsarflow.transport.queue import Delivered

log = logging.getLogger("pulsarflow.embedded")
BACKEND_RETRY_MS = 1_000  # a message whose backend was unreachable comes back after this delay


class BlockedRunAlarm:
    """An observer that notes the first run to block, for ``fail_fast`` to raise once the message is handled."""

    def __init__(self, inner: Observer | None) -> None:
        self.inner = inner
        self.blocked: WorkflowBlockedError | None = None

    def check(self) -> None:
        """Raise ``WorkflowBlockedError`` for a run that blocked since the last check."""
        blocked, self.blocked = self.blocked, None
        if blocked is not None:
            raise blocked

    def observe(self, envelope: Any, before: Any, decision: Decision[Any], now_ms: int) -> None:
        if self.inner is not None:
            self.inner.observe(envelope, before, decision, now_ms)
        blocked = getattr(decision.state, "blocked", None)
        if blocked is not None and getattr(before, "blocked", None) is None and self.blocked is None:
            self.blocked = WorkflowBlockedError(decision.state.workflow_id,  # type: ignore[union-attr]
                                                blocked.position, blocked.reason)


class EmbeddedEnvironment:
    """Runs workflows in this process. ``fail_fast`` re-raises handler crashes and dead letters.

    With ``fail_fast``, a run that blocks (its code raised an unexpected error or no longer
    matches its history) also raises ``WorkflowBlockedError`` at once, unless
    ``raise_on_blocked=False`` (to test how blocked runs behave).

    ``transport`` picks the queue (``transport/choice.py``): by default durable in Redis when
    ``store`` is a ``RedisStateStore`` (a second process resumes what a killed one left), in
    memory otherwise; ``"memory"`` or ``"redis"`` to choose, or a queue transport object.

    ``flow``, ``flow_leases``, ``executor_threads``: limits per service, docs/flow-control.md.
    """

    def __init__(self, *items: Any, clock: Clock | None = None, store: StateStore | None = None,
                 tag_store: StateStore | None = None, batch_size: int = 1,
                 converter: PayloadConverter | None = None, topics: Topics | None = None,
                 fail_fast: bool = False, duplicate_messages: bool = False,
                 events: EventSink | bool | None = None, metrics: Metrics | None = None,
                 raise_on_blocked: bool = True, transport: TransportOption = None,
                 workflow_cache: int | None = None, flow: Mapping[str, FlowLimit] | None = None,
                 flow_leases: FlowLeases | None = None, executor_threads: int = 1) -> None:
        self.clock = clock or SystemClock()
        self.codec = Codec()
        self.converter = converter or JsonConverter()
        self.topics = topics or Topics()
        self.registry = Registry(items)
        self.store = store if store is not None else InMemoryStateStore()
        self.transport = queue_for(transport, self.store, self.clock, self.topics, duplicate_messages)
        if (threads := whole_number(executor_threads, "executor_threads", "task attempts run at once")) > 1:
            self.transport = LockedQueue(self.transport)
        self.fail_fast = fail_fast
        self.dead_letters: list[DeadLetter] = []
        self.processed = 0
        # Where every event goes; True: a new InMemoryEventStore. Off by default (docs/visibility.md).
        self.events: EventSink | None = InMemoryEventStore() if events is True else (
            None if isinstance(events, bool) else events)
        self.metrics = metrics
        # Live workflows kept between messages (engines/live.py): None the default size, 0 off.
        configs = {kind: RuntimeConfig(kind, self.topics, workflow_cache=workflow_cache) for kind in ENGINES}
        self.workflow_engine = engine = self._build(configs["workflow"])
        self.flow = gate_for(flow, flow_leases, self.topics, self.clock)
        self._executor: TaskExecutor = self._build(configs["executor"], gate=self.flow)
        observer = recorder_for(self.clock, self.events, metrics)
        self._alarm = BlockedRunAlarm(observer) if fail_fast and raise_on_blocked else None
        self._workflows = self._handler(configs["workflow"], engine, self.store, self._alarm or observer)
        self._tasks = self._handler(configs["executor"], self._executor, None, observer)
        self._pool = ExecutorThreads(threads, lambda: self._thread_runner(observer)) if threads > 1 else None
        # Tag buckets are kept apart from workflow states (a workflow id may look like a tag key);
        # beside them in Redis when the states are in Redis (transport/choice.py).
        self.tag_store = tag_store_for(tag_store, self.store)
        self._tags = self._handler(configs["tag"], self._build(configs["tag"]), self.tag_store, None)
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
        if self._on_thread(delivery):
            self._pool.submit(delivery)  # type: ignore[union-attr]
        else:
            self._deliver(delivery, self._route(delivery.topic))
        self._check()
        return True

    def _check(self) -> None:
        if self._pool is not None:
            self._pool.raise_errors()
        if self._alarm is not None:
            self._alarm.check()

    def _on_thread(self, delivery: Delivered) -> bool:  # a task attempt, when there are executor threads
        return self._pool is not None and self._engine_for(delivery.topic) is self._tasks \
            and delivery.topic != self.topics.cancellations

    def _thread_runner(self, observer: Observer | None) -> Callable[[Delivered], None]:
        executor = TaskExecutor(self.registry, self.converter, self.topics, self.clock, flow=self.flow,
                                cancellations=self._executor.cancellations)  # one set of cancellations for all
        handler = self._handler(RuntimeConfig("executor", self.topics), executor, None, observer)
        return lambda delivery: self._deliver(delivery, handler.handle)

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
            if self._on_thread(group[0]):
                self._pool.submit_all(group)  # type: ignore[union-attr]
                continue
            if engine is None or len(group) == 1:
                for d in group:
                    self._deliver(d, self._route(topic))
                continue
            self._deliver_batch(engine, group)
        self._check()
        return True

    def _deliver_batch(self, engine: MessageHandler, group: list[Delivered]) -> None:
        """Handle one engine's messages as a batch, then settle each: those that met an outage come back."""
        try:
            BatchHandler(engine).handle_batch([(d.topic, d.payload) for d in group])
        except Exception as exc:
            # The batch names the messages to deliver again; after any other failure all come back, alone.
            again = exc.pending if isinstance(exc, PartialBatchError) else () if self.fail_fast else range(len(group))
            self._settle(group, again)
            if self.fail_fast:
                raise
            return
        self._settle(group, ())

    def _settle(self, group: list[Delivered], again: Collection[int]) -> None:
        for i, d in enumerate(group):
            if i in again:
                self.transport.requeue(d, self.clock.now_ms() + BACKEND_RETRY_MS)
            else:
                self.transport.ack(d)

    def _deliver(self, delivery: Delivered, route: Callable[[str, bytes], None]) -> None:
        """Handle one message, then settle it: acknowledged, or put back for later when a backend was down.

        A KeyboardInterrupt (or any BaseException) leaves it unsettled: a durable queue hands it
        out again to the next process, as after a kill.
        """
        try:
            self._handle(delivery.topic, delivery.payload, route)
        except BackendError as exc:  # the store or broker is down: keep the message and try it again later
            log.error("handler for %s could not reach a backend, retrying in %d ms: %s", delivery.topic,
                      BACKEND_RETRY_MS, exc)
            self.transport.requeue(delivery, self.clock.now_ms() + BACKEND_RETRY_MS)
            if self.fail_fast:
                raise
            return
        except Exception:  # fail_fast: the caller hears of it; the message is not handed out again
            self.transport.ack(delivery)
            raise
        self.transport.ack(delivery)

    def _handle(self, topic: str, payload: bytes, route: Callable[[str, bytes], None]) -> None:
        try:
            route(topic, payload)
        except BackendError:
            raise
        except Exception as exc:
            if self.fail_fast:
                raise
            log.exception("handler for %s crashed", topic)
            self._workflows.dead_letter(topic, payload, f"handler crashed: {type(exc).__name__}: {exc}")

    def pump(self, done: Callable[[], bool], timeout_s: float | None = None) -> bool:
        """Run until ``done()``; False on timeout or when nothing is left to run (see ``wait_for``)."""
        return self.wait_for(done, timeout_s).done

    def wait_for(self, done: Callable[[], bool], timeout_s: float | None = None) -> WaitEnd:
        """Run until ``done()``, and say how the wait ended.

        When no message is ready it moves to the next timer: sleeping on a real clock, at once
        on a virtual one. ``timeout_s`` counts real seconds on either clock, so on a virtual
        clock it bounds how long the caller waits, not how far the clock may skip. It gives up
        early when nothing is left to run in this process: waiting longer would change nothing.
        """
        timer, started_ms = WallTimer(timeout_s), self.clock.now_ms()
        stuck = False
        while not done() and not timer.expired():
            if self.step():
                continue
            if settled(self._pool):  # attempts were running on executor threads: their outcomes come next
                continue
            due = self.transport.next_due_ms()
            if due is None:
                stuck = True
                break
            self.clock.sleep_until(self._wake_at(due, timer))
        self.transport.flush()  # acknowledgements a durable queue keeps for its next round trip
        finished = done()
        return WaitEnd(finished, stuck and not finished, timeout_s, timer.elapsed_s(),
                       (self.clock.now_ms() - started_ms) / 1000, isinstance(self.clock, VirtualClock))

    def _wake_at(self, due_ms: int, timer: WallTimer) -> int:
        """When to wake for a timer due at ``due_ms``: not after the timeout on a real clock."""
        remaining = timer.remaining_ms()
        if remaining is None or isinstance(self.clock, VirtualClock):
            return due_ms  # a virtual clock skips ahead at once: the jump costs no real time
        return min(due_ms, self.clock.now_ms() + remaining)

    def run_until_idle(self, max_messages: int = 1_000_000) -> int:
        """Process every message due now (ready ones, and timers whose time has come); return how many.

        The clock does not move, so this returns even while timers are pending, e.g. a
        schedule's next fire. To let time pass, wait for an answer (``result()``) or, on a
        ``TestEnvironment``, call ``advance(seconds)`` or ``advance_until_idle(max_seconds)``.
        """
        start = self.processed
        while self.processed - start < max_messages and (self.step() or settled(self._pool)):
            pass
        self.transport.flush()  # acknowledgements a durable queue keeps for its next round trip
        return self.processed - start

    def close(self) -> None:
        """Stop the executor's threads and close the queue (a durable one lets another process take over)."""
        if self._pool is not None:
            self._pool.close()
        self._executor.close()
        self.transport.close()

    # -- internals ------------------------------------------------------------------------

    def _build(self, config: RuntimeConfig, gate: FlowGate | None = None) -> Any:
        return build_engine(config, self.registry, self.converter, self.clock, gate=gate)

    def _handler(self, config: RuntimeConfig, engine: Any, store: StateStore | None,
                 observer: Observer | None) -> MessageHandler:
        return build_handler(config, engine, self.codec, self.transport, self.clock, store, observer)

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
        self.env.transport.flush()  # in a durable queue once this returns

    def listen(self, topic: str, on_message: Callable[[bytes], None]) -> None:
        self.env._listeners[topic] = on_message

    def engines_release(self, topic: str) -> str | None:
        return None  # the engines of this very process

    def wait(self, done: Callable[[], bool], timeout_s: float | None) -> bool:
        return self.env.pump(done, timeout_s)

    def wait_or_explain(self, done: Callable[[], bool], timeout_s: float | None) -> str | None:
        end = self.env.wait_for(done, timeout_s)
        return None if end.done else end.describe()
