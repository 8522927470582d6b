"""What every client request shares: the connection, reply topics, matching answers to requests.

The public client is :class:`pulsarflow.sdk.client.Client`; tag and custom-id requests are
in :mod:`pulsarflow.sdk.tags`.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from pulsarflow.clock import SystemClock
from pulsarflow.codec import Codec
from pulsarflow.converter import JsonConverter, PayloadConverter
from pulsarflow.errors import (
    ControlRefusedError,
    DefinitionError,
    ResultTimeoutError,
    SchemaError,
    WorkflowNotFoundError,
)
from pulsarflow.interpreter.definitions import WorkflowDefinition, workflow_definition
from pulsarflow.interpreter.registry import Registry
from pulsarflow.messages import (
    Blocked,
    ClientMessage,
    ControlAnswer,
    ReplyTo,
    TagEngineMessage,
    WorkflowEngineMessage,
    WorkflowNotFound,
)
from pulsarflow.runtime.admission import NAME_PART
from pulsarflow.runtime.limits import DEFAULT_MAX_MESSAGE_BYTES, MAX_TAG_KEY_CHARS, check_id, check_size
from pulsarflow.topics import Topics


class Connection(Protocol):
    """How a client reaches the engines and hears back."""

    def send(self, topic: str, key: str, payload: bytes) -> None: ...

    def listen(self, topic: str, on_message: Callable[[bytes], None]) -> None: ...

    def engines_release(self, topic: str) -> str | None:
        """The earlier release the engines reading ``topic`` run (None: this one, or a newer one)."""
        ...

    def wait(self, done: Callable[[], bool], timeout_s: float | None) -> bool:
        """Block (or drive the embedded loop) until ``done()`` or the timeout; return ``done()``."""
        ...


@runtime_checkable
class ExplainsWaits(Protocol):
    """A connection that can say why a wait ended without its answer (the embedded one can)."""

    def wait_or_explain(self, done: Callable[[], bool], timeout_s: float | None) -> str | None:
        """Like ``Connection.wait``, but None once ``done()``, else why not, as words that
        follow "no answer about workflow 'x'" (e.g. " within 10s" or ": gave up after ...")."""
        ...


@dataclass(frozen=True)
class WorkflowDescription:
    workflow_id: str
    workflow_name: str
    status: str
    steps: int
    blocked: Blocked | None = None  # why a RUNNING run cannot go on (reason, position, since when)

    def describe(self) -> str:
        """One line for people: status and steps, and for a blocked run where and why."""
        line = f"{self.workflow_id} ({self.workflow_name}): {self.status}, {self.steps} steps"
        if self.blocked is not None:
            line += f", BLOCKED at step {self.blocked.position}: {self.blocked.reason.describe()}"
        return line


MAX_UNCLAIMED_ANSWERS = 10_000  # answers kept for requests not (yet) awaited


class ClientBase:
    """The plumbing of :class:`~pulsarflow.sdk.client.Client`."""

    def __init__(self, connection: Connection, codec: Codec, topics: Topics,
                 converter: PayloadConverter | None = None, registry: Registry | None = None,
                 client_id: str | None = None, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        self.connection = connection
        self.codec = codec
        self.topics = topics
        self.converter = converter or JsonConverter()
        self.registry = registry
        # The broker's maxMessageSize: requests that would not fit are refused before anything is sent.
        self.max_message_bytes = max_message_bytes
        if client_id is not None and not NAME_PART.fullmatch(client_id):
            raise DefinitionError(f"client_id {client_id!r} must be 1 to 200 letters, digits or _.=:%- "
                                  "(it names the client's reply topic)")
        self.topic = topics.client(client_id or uuid.uuid4().hex)
        # Answers not yet taken, oldest first; bounded, so answers nobody waits for cannot pile up.
        self._answers: OrderedDict[str, ClientMessage] = OrderedDict()
        self._clock = SystemClock()
        self._answer_listeners: list[Callable[[ClientMessage], None]] = []
        connection.listen(self.topic, self._on_answer)

    def add_answer_listener(self, listener: Callable[[ClientMessage], None]) -> None:
        """Call ``listener`` with every answer this client receives (monitoring, benchmarks)."""
        self._answer_listeners.append(listener)

    def _definition(self, workflow: Callable[..., Any] | str) -> WorkflowDefinition | None:
        if isinstance(workflow, str):
            return self.registry.workflow(workflow) if self.registry is not None else None
        defn = workflow_definition(workflow)
        if self.registry is not None:
            self.registry.workflow(defn.name)  # an unknown workflow fails here, at the call site
        return defn

    def _reply_to(self) -> ReplyTo:
        return ReplyTo(self.topic, uuid.uuid4().hex, identity=True)

    def _send(self, workflow_id: str, message: Any) -> None:
        check_id("workflow id", workflow_id)
        envelope = WorkflowEngineMessage(uuid.uuid4().hex, workflow_id, self._clock.now_ms(), message)
        self._publish(self.topics.workflow_engine, workflow_id, envelope)

    def _send_tag(self, key: str, message: Any) -> None:
        check_id("tag or custom id", key, MAX_TAG_KEY_CHARS)
        envelope = TagEngineMessage(uuid.uuid4().hex, key, self._clock.now_ms(), message)
        self._publish(self.topics.tag_engine, key, envelope)

    def _publish(self, topic: str, key: str, envelope: Any) -> None:
        payload = self._encode_for(topic, envelope)
        check_size(f"this {type(envelope.message).__name__} for {key[:80]!r}", payload, key, self.max_message_bytes)
        self.connection.send(topic, key, payload)

    def _encode_for(self, topic: str, envelope: Any) -> bytes:
        """The envelope as the engines of ``topic`` read it: with the schemas of their release, if earlier."""
        release = self.connection.engines_release(topic)
        if release is None:
            return self.codec.encode(envelope)
        try:
            return self.codec.encode_as(release, envelope)
        except (ValueError, TypeError, KeyError, SchemaError) as exc:  # a message or field that release lacks
            raise DefinitionError(f"the engines of {topic} run release {release}, which cannot take this "
                                  f"{type(envelope.message).__name__} ({exc}): upgrade them first") from exc

    def _on_answer(self, payload: bytes) -> None:
        answer = self.codec.decode(ClientMessage, payload)
        self._answers.setdefault(answer.request_id, answer)
        while len(self._answers) > MAX_UNCLAIMED_ANSWERS:
            self._answers.popitem(last=False)  # the oldest: its request gave up long ago, or never waited
        for listener in self._answer_listeners:
            listener(answer)

    def _await(self, request_id: str, workflow_id: str, timeout: float | None) -> Any:
        why_not = self._wait(lambda: request_id in self._answers, timeout)
        if why_not is not None:
            raise ResultTimeoutError(f"no answer about workflow {workflow_id!r}{why_not}")
        return self._answers.pop(request_id).message

    def _wait(self, done: Callable[[], bool], timeout: float | None) -> str | None:
        """None once ``done()``; else why the wait ended without it."""
        if isinstance(self.connection, ExplainsWaits):
            return self.connection.wait_or_explain(done, timeout)
        if self.connection.wait(done, timeout):
            return None
        if timeout is None:
            return ": the connection stopped waiting before the answer came (no timeout was set)"
        return (f" within {timeout:g}s (is a worker running the workflow engine, and is the workflow "
                "waiting on something?)")

    def _control(self, answer: Any) -> str:
        answer = self._expect(answer, ControlAnswer)
        if not answer.accepted:
            raise ControlRefusedError(f"{answer.action} refused: {answer.detail}")
        return str(answer.detail)

    def _expect(self, answer: Any, kind: type) -> Any:
        if isinstance(answer, WorkflowNotFound):
            raise WorkflowNotFoundError(f"{answer.reason}; check the id, or start the workflow first")
        if not isinstance(answer, kind):
            raise WorkflowNotFoundError(f"unexpected answer {type(answer).__name__}")
        return answer
