"""A small broker for Redis tests: the shared MessageHandler over an in-memory queue.

Like Pulsar, it acknowledges a message only when its handler returns; a message whose
handler raised stays queued and is delivered again. The embedded runtime cannot show
that: it dead-letters a message whose handler crashed.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from pulsarflow.clock import SystemClock
from pulsarflow.codec import Codec
from pulsarflow.converter import JsonConverter
from pulsarflow.engines.workflow import WorkflowEngine
from pulsarflow.errors import StateConflictError
from pulsarflow.interpreter.registry import Registry
from pulsarflow.messages import ClientMessage, WorkflowCompleted, WorkflowEngineMessage, WorkflowState
from pulsarflow.messages.common import ReplyTo
from pulsarflow.messages.workflow import SendSignal, StartWorkflow
from pulsarflow.runtime.executor import TaskExecutor
from pulsarflow.runtime.handler import MessageHandler
from pulsarflow.storage import BatchByKey, StateStore, Versioned
from pulsarflow.topics import Topics
from pulsarflow.transport.memory import InMemoryTransport

TOPICS = Topics(app="redis-tests")
ANSWERS = TOPICS.client("tests")
CODEC, CONVERTER = Codec(), JsonConverter()


def start(workflow_id: str, name: str, *args: Any) -> bytes:
    reply = ReplyTo(ANSWERS, f"start-{workflow_id}")
    message = StartWorkflow(name, CONVERTER.encode(args), reply=reply)
    return CODEC.encode(WorkflowEngineMessage(uuid.uuid4().hex, workflow_id, 0, message))


def signal(workflow_id: str, signal_id: str, name: str, data: Any) -> bytes:
    message = SendSignal(signal_id, name, CONVERTER.encode([data]))
    return CODEC.encode(WorkflowEngineMessage(uuid.uuid4().hex, workflow_id, 0, message))


def workflow_state(store: StateStore, workflow_id: str) -> WorkflowState | None:
    stored = store.get(workflow_id)
    return None if stored is None else CODEC.decode(WorkflowState, stored.value)


class LockedTransport(InMemoryTransport):
    """The in-memory queue, safe for handlers running on several threads."""

    def __init__(self) -> None:
        super().__init__(SystemClock())
        self.lock = threading.Lock()

    def send(self, topic: str, key: str, payload: bytes, deliver_at_ms: int | None = None) -> None:
        with self.lock:
            super().send(topic, key, payload, deliver_at_ms)


@dataclass
class Broker:
    store: StateStore
    items: tuple[Any, ...]
    transport: LockedTransport = field(default_factory=LockedTransport)
    answers: list[ClientMessage] = field(default_factory=list)
    failures: list[Exception] = field(default_factory=list)

    def __post_init__(self) -> None:
        registry, clock = Registry(self.items), SystemClock()
        self.workflows = self.handler(WorkflowEngine(registry, CONVERTER, TOPICS), self.store)
        self.tasks = self.handler(TaskExecutor(registry, CONVERTER, TOPICS, clock), None)

    def handler(self, engine: Any, store: StateStore | None) -> MessageHandler:
        return MessageHandler(engine, CODEC, self.transport, SystemClock(), store, TOPICS.dead_letters)

    def send(self, payload: bytes, key: str = "") -> None:
        self.transport.send(TOPICS.workflow_engine, key, payload)

    def step(self) -> bool:
        """Deliver one message; False when none is ready. A handler error leaves it queued."""
        delivery = self.transport.poll()
        if delivery is None:
            return False
        topic, key, payload = delivery
        try:
            if topic == ANSWERS:
                self.answers.append(CODEC.decode(ClientMessage, payload))
            elif topic == TOPICS.dead_letters:
                raise AssertionError(f"a message was dead-lettered: {payload[:200]!r}")
            elif topic == TOPICS.workflow_engine:
                self.workflows.handle(topic, payload)
            else:
                self.tasks.handle(topic, payload)
        except (AssertionError, KeyboardInterrupt):
            raise
        except Exception as exc:
            self.failures.append(exc)
            self.transport.send(topic, key, payload)  # not acknowledged: delivered again
            time.sleep(0.05)
        return True

    def run(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.step():
                due = self.transport.next_due_ms()
                if due is None:
                    return
                time.sleep(0.01)
        raise AssertionError(f"messages still pending after {timeout_s}s")

    def result(self, workflow_id: str) -> Any:
        for answer in self.answers:
            if answer.workflow_id == workflow_id and answer.request_id == f"start-{workflow_id}":
                assert isinstance(answer.message, WorkflowCompleted), answer.message
                return CONVERTER.decode(answer.message.result)[0]
        raise AssertionError(f"no answer for {workflow_id}; got {[a.workflow_id for a in self.answers]}")


class SlowReads(BatchByKey):
    """A store whose reads take a little while, so that concurrent handlers really interleave."""

    supports_cas = True

    def __init__(self, store: StateStore, delay_s: float = 0.003) -> None:
        self.store, self.delay_s = store, delay_s
        self.retention_ms = store.retention_ms
        self.conflicts = 0

    def get(self, key: str) -> Versioned | None:
        stored = self.store.get(key)
        time.sleep(self.delay_s)
        return stored

    def put(self, key: str, value: bytes, expected_version: int, finished: bool = False) -> int:
        try:
            return self.store.put(key, value, expected_version, finished)
        except StateConflictError:
            self.conflicts += 1
            raise

    def delete(self, key: str) -> None:
        self.store.delete(key)
