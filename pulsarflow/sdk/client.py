"""The client: start workflows, wait for results, send signals, read status.

It speaks to the engines only through messages, over a ``Connection`` (embedded or
Pulsar), and matches answers to requests by request id.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from pulsarflow.clock import SystemClock
from pulsarflow.codec import Codec
from pulsarflow.converter import JsonConverter, PayloadConverter, decode_one
from pulsarflow.engines import messages_out as out
from pulsarflow.errors import (
    ControlRefusedError,
    DefinitionError,
    QueryFailedError,
    ResultTimeoutError,
    SerializationError,
    UpdateFailedError,
    WorkflowCancelledError,
    WorkflowFailedError,
    WorkflowNotFoundError,
)
from pulsarflow.messages import (
    CancelWorkflow,
    ClientMessage,
    ControlAnswer,
    CustomIdAnswer,
    GetWorkflowResult,
    GetWorkflowStatus,
    ListTagIds,
    QueryAnswer,
    QueryWorkflow,
    ReplyTo,
    RetryWorkflow,
    SendSignal,
    SignalAccepted,
    StartByCustomId,
    StartWorkflow,
    TagEngineMessage,
    TagIds,
    TagOperation,
    UpdateCall,
    UpdateWorkflow,
    WorkflowCompleted,
    WorkflowEngineMessage,
    WorkflowFailed,
    WorkflowNotFound,
    WorkflowStatusReply,
)
from pulsarflow.messages import tags as tags_messages
from pulsarflow.sdk.definitions import Duration, WorkflowDefinition, to_ms, workflow_definition
from pulsarflow.sdk.registry import Registry
from pulsarflow.topics import Topics


class Connection(Protocol):
    """How a client reaches the engines and hears back."""

    def send(self, topic: str, key: str, payload: bytes) -> None: ...

    def listen(self, topic: str, on_message: Callable[[bytes], None]) -> None: ...

    def wait(self, done: Callable[[], bool], timeout_s: float | None) -> bool:
        """Block (or drive the embedded loop) until ``done()`` or the timeout; return ``done()``."""
        ...


@dataclass(frozen=True)
class WorkflowDescription:
    workflow_id: str
    workflow_name: str
    status: str
    steps: int


class Client:
    def __init__(self, connection: Connection, codec: Codec, topics: Topics,
                 converter: PayloadConverter | None = None, registry: Registry | None = None,
                 client_id: str | None = None) -> None:
        self.connection = connection
        self.codec = codec
        self.topics = topics
        self.converter = converter or JsonConverter()
        self.registry = registry
        self.topic = topics.client(client_id or uuid.uuid4().hex)
        self._answers: dict[str, ClientMessage] = {}
        self._clock = SystemClock()
        self._answer_listeners: list[Callable[[ClientMessage], None]] = []
        connection.listen(self.topic, self._on_answer)

    def start_with_request_id(self, workflow: Callable[..., Any] | str, *args: Any, request_id: str,
                              id: str | None = None) -> WorkflowHandle:
        """``start`` with a caller-chosen request id (to match answers, e.g. in benchmarks)."""
        return self.start(workflow, *args, id=id, request_id=request_id)

    def start(self, workflow: Callable[..., Any] | str, *args: Any, id: str | None = None,
              timeout: Duration | None = None, request_id: str | None = None, tags: Iterable[str] = (),
              custom_id: str | None = None) -> WorkflowHandle:
        """Start a workflow. With ``id``, starting twice returns the same run, never a second one.

        ``tags`` let you find it (``find_ids``) and act on every workflow carrying a tag
        (``signal_tag``, ``cancel_tag``, ``retry_tag``). With ``custom_id``, at most one
        workflow runs per custom id: while one runs, another start attaches to it (the
        handle's ``id`` tells which); once it has ended, a start creates a new one.
        """
        tags = _check_tags(tags)
        if custom_id is not None and id is not None:
            raise DefinitionError("pass either id= (one workflow ever) or custom_id= (one running at a time), "
                                  "not both")
        defn = self._definition(workflow)
        name = defn.name if defn else str(workflow)
        try:
            payload = self.converter.encode(args)
        except SerializationError as exc:
            raise SerializationError(f"arguments of workflow {name!r} cannot be serialized: {exc}") from exc
        workflow_id = id or uuid.uuid4().hex
        reply = ReplyTo(self.topic, request_id) if request_id else self._reply_to()
        timeout_ms = to_ms(timeout) if timeout is not None else (defn.timeout_ms if defn else None)
        start = StartWorkflow(name, payload, reply=reply, timeout_ms=timeout_ms, tags=tags)
        if custom_id is not None:
            workflow_id = self._start_by_custom_id(custom_id, workflow_id, start)
        else:
            self._send(workflow_id, start)
        return WorkflowHandle(self, workflow_id, defn, reply.request_id)

    def find_ids(self, tag: str, page_size: int = 1000, timeout: float | None = 30.0) -> list[str]:
        """Ids of the running (and failed) workflows carrying ``tag``, read a page at a time from every bucket."""
        (tag,) = _check_tags([tag])
        pending: dict[str, str | None] = {key: None for key in out.tag_buckets(tag)}
        found: list[str] = []
        while pending:
            asked = {}
            for key, after in pending.items():
                reply = self._reply_to()
                self._send_tag(key, ListTagIds(0, page_size, reply, after=after))
                asked[key] = reply.request_id
            pending = {}
            for key, request_id in asked.items():
                page = self._expect(self._await(request_id, tag, timeout), TagIds)
                found.extend(page.workflow_ids)
                if page.next_after is not None:
                    pending[key] = page.next_after
        return found

    def signal_tag(self, tag: str, name: str, data: Any = None) -> str:
        """Send signal ``name`` to every running workflow carrying ``tag``; returns the operation id."""
        try:
            payload = self.converter.encode([data])
        except SerializationError as exc:
            raise SerializationError(f"data of signal {name!r} cannot be serialized: {exc}") from exc
        return self._tag_operation(tag, TagOperation(uuid.uuid4().hex, tags_messages.SIGNAL, name, payload))

    def cancel_tag(self, tag: str, reason: str = "cancelled by a client") -> str:
        """Cancel every running workflow carrying ``tag``; returns the operation id."""
        return self._tag_operation(tag, TagOperation(uuid.uuid4().hex, tags_messages.CANCEL, reason=reason))

    def retry_tag(self, tag: str) -> str:
        """Retry every failed workflow carrying ``tag`` (see ``retry``); returns the operation id.

        Failed workflows stay under their tags until they complete or are cancelled.
        """
        return self._tag_operation(tag, TagOperation(uuid.uuid4().hex, tags_messages.RETRY))

    def get_handle(self, workflow_id: str, workflow: Callable[..., Any] | None = None) -> WorkflowHandle:
        """A handle on an existing workflow (pass the workflow to decode its result with type hints)."""
        return WorkflowHandle(self, workflow_id, workflow_definition(workflow) if workflow else None, None)

    def signal(self, workflow_id: str, name: str, data: Any = None, timeout: float | None = 30.0) -> None:
        """Deliver signal ``name`` with ``data``; raises WorkflowNotFoundError if no such running workflow."""
        try:
            payload = self.converter.encode([data])
        except SerializationError as exc:
            raise SerializationError(f"data of signal {name!r} cannot be serialized: {exc}") from exc
        reply = self._reply_to()
        self._send(workflow_id, SendSignal(uuid.uuid4().hex, name, payload, reply=reply))
        self._expect(self._await(reply.request_id, workflow_id, timeout), SignalAccepted)

    def cancel(self, workflow_id: str, reason: str = "cancelled by a client", timeout: float | None = 30.0) -> str:
        """Cancel a running workflow (and its children); returns what the engine did.

        Its pending steps raise WorkflowCancelledError inside the workflow, which may clean
        up before it ends. Raises ControlRefusedError if the workflow is not running.
        """
        reply = self._reply_to()
        self._send(workflow_id, CancelWorkflow(reason, reply))
        return self._control(self._await(reply.request_id, workflow_id, timeout))

    def retry(self, workflow_id: str, positions: tuple[int, ...] = (), timeout: float | None = 30.0) -> str:
        """Resume a failed workflow by retrying its failed tasks (or only those at ``positions``).

        Raises ControlRefusedError if the workflow did not fail, or has no such failed task.
        """
        reply = self._reply_to()
        self._send(workflow_id, RetryWorkflow(uuid.uuid4().hex, tuple(positions), reply))
        return self._control(self._await(reply.request_id, workflow_id, timeout))

    def retry_task(self, task_id: str, timeout: float | None = 30.0) -> str:
        """Retry one failed task by its id (``<workflow id>/<position>``, see ``task_info().task_id``)."""
        workflow_id, _, position = task_id.rpartition("/")
        if not workflow_id or not position.isdigit():
            raise ValueError(f"task id {task_id!r} is not of the form '<workflow id>/<position>'")
        return self.retry(workflow_id, (int(position),), timeout)

    def query(self, workflow_id: str, name: str, *args: Any, timeout: float | None = 30.0) -> Any:
        """Call the workflow's query handler ``name`` (see ``ctx.on_query``); its history is not changed.

        Raises QueryFailedError if the workflow declares no such query or its handler raised.
        """
        try:
            payload = self.converter.encode(args)
        except SerializationError as exc:
            raise SerializationError(f"arguments of query {name!r} cannot be serialized: {exc}") from exc
        reply = self._reply_to()
        self._send(workflow_id, QueryWorkflow(name, payload, reply))
        answer = self._expect(self._await(reply.request_id, workflow_id, timeout), QueryAnswer)
        if answer.error is not None:
            raise QueryFailedError(answer.error)
        return decode_one(self.converter, answer.value or b"[null]", None)

    def update(self, workflow_id: str, name: str, *args: Any, update_id: str | None = None,
               timeout: float | None = 30.0) -> Any:
        """Run the workflow's update handler ``name`` (see ``ctx.on_update``) and return its answer.

        The update is recorded in the workflow's history; the same ``update_id`` is applied
        once. Raises UpdateFailedError if the workflow has no such handler, is not running,
        or the handler raised.
        """
        try:
            payload = self.converter.encode(args)
        except SerializationError as exc:
            raise SerializationError(f"arguments of update {name!r} cannot be serialized: {exc}") from exc
        reply = self._reply_to()
        self._send(workflow_id, UpdateWorkflow(UpdateCall(update_id or uuid.uuid4().hex, name, payload), reply))
        answer = self._expect(self._await(reply.request_id, workflow_id, timeout), QueryAnswer)
        if answer.error is not None:
            raise UpdateFailedError(answer.error)
        return decode_one(self.converter, answer.value or b"[null]", None)

    def status(self, workflow_id: str, timeout: float | None = 30.0) -> WorkflowDescription:
        reply = self._reply_to()
        self._send(workflow_id, GetWorkflowStatus(reply))
        answer = self._expect(self._await(reply.request_id, workflow_id, timeout), WorkflowStatusReply)
        return WorkflowDescription(workflow_id, answer.workflow_name, answer.status, answer.steps)

    # -- plumbing -------------------------------------------------------------------------

    def _definition(self, workflow: Callable[..., Any] | str) -> WorkflowDefinition | None:
        if isinstance(workflow, str):
            return self.registry.workflow(workflow) if self.registry is not None else None
        defn = workflow_definition(workflow)
        if self.registry is not None:
            self.registry.workflow(defn.name)  # an unknown workflow fails here, at the call site
        return defn

    def _start_by_custom_id(self, custom_id: str, workflow_id: str, start: StartWorkflow) -> str:
        if not custom_id:
            raise DefinitionError("custom_id must be a non-empty string")
        reply = self._reply_to()
        key = out.CUSTOM_ID_PREFIX + custom_id
        self._send_tag(key, StartByCustomId(workflow_id, start, reply))
        answer = self._expect(self._await(reply.request_id, key, 30.0), CustomIdAnswer)
        return str(answer.workflow_id)

    def _tag_operation(self, tag: str, operation: TagOperation) -> str:
        """Send ``operation`` to every bucket of ``tag``; each works through its ids a page at a time."""
        (tag,) = _check_tags([tag])
        for key in out.tag_buckets(tag):
            self._send_tag(key, operation)
        return operation.operation_id

    def _send_tag(self, key: str, message: Any) -> None:
        envelope = TagEngineMessage(uuid.uuid4().hex, key, self._clock.now_ms(), message)
        self.connection.send(self.topics.tag_engine, key, self.codec.encode(envelope))

    def _reply_to(self) -> ReplyTo:
        return ReplyTo(self.topic, uuid.uuid4().hex)

    def _send(self, workflow_id: str, message: Any) -> None:
        envelope = WorkflowEngineMessage(uuid.uuid4().hex, workflow_id, self._clock.now_ms(), message)
        self.connection.send(self.topics.workflow_engine, workflow_id, self.codec.encode(envelope))

    def add_answer_listener(self, listener: Callable[[ClientMessage], None]) -> None:
        """Call ``listener`` with every answer this client receives (monitoring, benchmarks)."""
        self._answer_listeners.append(listener)

    def _on_answer(self, payload: bytes) -> None:
        answer = self.codec.decode(ClientMessage, payload)
        self._answers.setdefault(answer.request_id, answer)
        for listener in self._answer_listeners:
            listener(answer)

    def _await(self, request_id: str, workflow_id: str, timeout: float | None) -> Any:
        if not self.connection.wait(lambda: request_id in self._answers, timeout):
            raise ResultTimeoutError(
                f"no answer about workflow {workflow_id!r} within {timeout}s "
                "(is a worker running the workflow engine, and is the workflow waiting on something?)")
        return self._answers.pop(request_id).message

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


def _check_tags(tags: Iterable[str]) -> tuple[str, ...]:
    if isinstance(tags, str):
        raise DefinitionError(f"tags must be a list of strings, got the string {tags!r}; write tags=[{tags!r}]")
    checked = tuple(dict.fromkeys(tags))
    for tag in checked:
        if not isinstance(tag, str) or not tag:
            raise DefinitionError(f"a tag must be a non-empty string, got {tag!r}")
        if tag.startswith(out.CUSTOM_ID_PREFIX):
            raise DefinitionError(f"tag {tag!r}: the prefix {out.CUSTOM_ID_PREFIX!r} is reserved; "
                                  "pass custom_id= to start at most one running workflow per id")
    return checked


class WorkflowHandle:
    """A started (or looked-up) workflow."""

    def __init__(self, client: Client, workflow_id: str, definition: WorkflowDefinition | None,
                 request_id: str | None) -> None:
        self.client = client
        self.id = workflow_id
        self.definition = definition
        self._request_id = request_id
        self._answer: Any = None

    def result(self, timeout: float | None = None) -> Any:
        """Wait for the result; raises WorkflowFailedError (with the cause chain) if it failed."""
        if self._answer is None:
            if self._request_id is None:
                reply = self.client._reply_to()
                self.client._send(self.id, GetWorkflowResult(reply))
                self._request_id = reply.request_id
            self._answer = self.client._await(self._request_id, self.id, timeout)
        answer = self._answer
        if isinstance(answer, WorkflowFailed):
            if answer.error.type == WorkflowCancelledError.__name__ and answer.error.workflow_id == self.id:
                raise WorkflowCancelledError(self.id, answer.error)
            raise WorkflowFailedError(self.id, answer.error)
        answer = self.client._expect(answer, WorkflowCompleted)
        hint = self.definition.return_hint if self.definition else None
        return decode_one(self.client.converter, answer.result, hint)

    @property
    def request_id(self) -> str | None:
        """Id under which this handle's answer arrives (None until a result is requested)."""
        return self._request_id

    def done(self) -> bool:
        """True once the result (or failure) has arrived; never blocks."""
        return self._answer is not None or (self._request_id is not None and self._request_id in self.client._answers)

    def signal(self, name: str, data: Any = None) -> None:
        self.client.signal(self.id, name, data)

    def status(self) -> WorkflowDescription:
        return self.client.status(self.id)

    def query(self, name: str, *args: Any) -> Any:
        return self.client.query(self.id, name, *args)

    def update(self, name: str, *args: Any) -> Any:
        return self.client.update(self.id, name, *args)

    def cancel(self, reason: str = "cancelled by a client") -> str:
        return self.client.cancel(self.id, reason)

    def retry(self, positions: tuple[int, ...] = ()) -> str:
        """Resume this failed workflow; ``result()`` then waits for the new outcome."""
        detail = self.client.retry(self.id, positions)
        self._answer, self._request_id = None, None
        return detail
