"""The client: start workflows, wait for results, send signals, read status, control them.

It speaks to the engines only through messages, over a ``Connection`` (embedded or
Pulsar), and matches answers to requests by request id (see ``sdk/base.py``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from pulsarflow import tracing
from pulsarflow.completion import CompletionToken
from pulsarflow.converter import decode_one
from pulsarflow.errors import (
    ApplicationError,
    DefinitionError,
    ErrorInfo,
    QueryFailedError,
    ResultTimeoutError,
    SerializationError,
    UpdateFailedError,
    WorkflowNotFoundError,
)
from pulsarflow.failures import error_info
from pulsarflow.interpreter.definitions import (
    Duration,
    WorkflowDefinition,
    positional_arguments,
    to_ms,
    workflow_definition,
)
from pulsarflow.interpreter.names import check_name
from pulsarflow.messages import (
    CancelWorkflow,
    CompleteTask,
    GetWorkflowStatus,
    QueryAnswer,
    QueryWorkflow,
    ReplyTo,
    RetryWorkflow,
    SendSignal,
    SignalAccepted,
    SignalWithStart,
    StartWorkflow,
    UpdateCall,
    UpdateWithStart,
    UpdateWorkflow,
    WorkflowNotFound,
    WorkflowStatusReply,
)
from pulsarflow.messages import client as status
from pulsarflow.sdk.base import Connection, WorkflowDescription
from pulsarflow.sdk.handle import WorkflowHandle
from pulsarflow.sdk.tags import TagRequests, check_tags

__all__ = ["Client", "Connection", "WorkflowDescription", "WorkflowHandle"]


class Client(TagRequests):
    """Starts workflows and talks to them: start, result, signal, status, query, update, cancel, retry."""

    def start_with_request_id(self, workflow: Callable[..., Any] | str, *args: Any, request_id: str,
                              id: str | None = None) -> WorkflowHandle:
        """``start`` with a caller-chosen request id (to match answers, e.g. in benchmarks)."""
        return self.start(workflow, *args, id=id, request_id=request_id)

    def start(self, workflow: Callable[..., Any] | str, *args: Any, id: str | None = None,
              timeout: Duration | None = None, request_id: str | None = None, tags: Iterable[str] = (),
              custom_id: str | None = None, **kwargs: Any) -> WorkflowHandle:
        """Start a workflow. With ``id``, starting twice returns the same run, never a second one.

        Arguments go by position or by keyword, as in a call (keywords need the workflow
        itself, not its name, to know its parameters).

        ``tags`` let you find it (``find_ids``) and act on every workflow carrying a tag
        (``signal_tag``, ``cancel_tag``, ``retry_tag``). With ``custom_id``, at most one
        workflow runs per custom id: while one runs, another start attaches to it (the
        handle's ``id`` tells which); once it has ended, a start creates a new one.
        """
        if custom_id is not None and id is not None:
            raise DefinitionError("pass either id= (one workflow ever) or custom_id= (one running at a time), "
                                  "not both")
        with tracing.span(f"pulsarflow.start {getattr(workflow, '__name__', workflow)}", kind="PRODUCER"):
            workflow_id, defn, start = self._start_message(workflow, args, kwargs, id, timeout, request_id, tags)
            assert start.reply is not None
            if custom_id is not None:
                workflow_id = self._start_by_custom_id(custom_id, workflow_id, start)
            else:
                self._send(workflow_id, start)
        return WorkflowHandle(self, workflow_id, defn, start.reply.request_id)

    def signal_with_start(self, workflow: Callable[..., Any] | str, *args: Any, id: str, signal: str,
                          signal_data: Any = None, timeout: Duration | None = None, tags: Iterable[str] = (),
                          wait: float | None = 30.0, **kwargs: Any) -> WorkflowHandle:
        """Start workflow ``id`` unless it runs already, and deliver signal ``signal`` to it, atomically.

        One message: the engine starts the run (or finds the one running under ``id``) and
        records the signal in the same decision, so no other message can come between them
        and the signal is never sent to a workflow that does not exist yet. Raises
        WorkflowNotFoundError when ``id`` names a workflow that has finished: the signal is
        not delivered and no new run starts (ids are not reused; use another id).
        """
        _with_start_id(id, "signal_with_start")
        signal = check_name("the signal name", signal)
        workflow_id, defn, start = self._start_message(workflow, args, kwargs, id, timeout, None, tags)
        payload = self._encode_payload([signal_data], f"data of signal {signal!r}")
        reply = self._reply_to()
        self._send(workflow_id, SignalWithStart(start, SendSignal(uuid.uuid4().hex, signal, payload, reply=reply)))
        answer = self._await(reply.request_id, workflow_id, wait)
        if isinstance(answer, WorkflowNotFound):
            raise self._undelivered(workflow_id, signal, answer, wait)
        self._expect(answer, SignalAccepted)
        assert start.reply is not None
        return WorkflowHandle(self, workflow_id, defn, start.reply.request_id)

    def update_with_start(self, workflow: Callable[..., Any] | str, *args: Any, id: str, update: str,
                          update_args: Sequence[Any] = (), update_id: str | None = None,
                          timeout: Duration | None = None, tags: Iterable[str] = (), wait: float | None = 30.0,
                          **kwargs: Any) -> tuple[WorkflowHandle, Any]:
        """Start workflow ``id`` unless it runs already, and run its update handler ``update``, atomically.

        The update is applied once the new run's code waits (its ``ctx.on_update`` handlers
        declared), in the same decision as the start. Returns the handle and the update's
        answer; raises UpdateFailedError as ``update`` does (no such handler, the workflow
        has finished, the handler raised).
        """
        _with_start_id(id, "update_with_start")
        update = check_name("the update name", update)
        update_args = _arguments(update_args, "update_args")
        workflow_id, defn, start = self._start_message(workflow, args, kwargs, id, timeout, None, tags)
        payload = self._encode_payload(update_args, f"arguments of update {update!r}")
        reply = self._reply_to()
        call = UpdateWorkflow(UpdateCall(_update_id(update_id), update, payload), reply)
        self._send(workflow_id, UpdateWithStart(start, call))
        answer = self._expect(self._await(reply.request_id, workflow_id, wait), QueryAnswer)
        assert start.reply is not None
        handle = WorkflowHandle(self, workflow_id, defn, start.reply.request_id)
        if answer.error is not None:
            raise UpdateFailedError(answer.error)
        return handle, decode_one(self.converter, answer.value, None)

    def complete_task(self, token: str, result: Any = None, timeout: float | None = 30.0) -> str:
        """Complete, with ``result``, the task step that handed back ``token`` (``pulsarflow.complete_later``).

        Raises ControlRefusedError when the step no longer waits for it (already completed,
        the workflow finished or was retried), DefinitionError for a string that is no token.
        """
        return self._complete(token, self._encode_payload([result], "the task's result"), None, timeout)

    def fail_task(self, token: str, error: BaseException | str, timeout: float | None = 30.0) -> str:
        """Fail the task step that handed back ``token``: the workflow gets a TaskFailedError (no retry)."""
        exc = error if isinstance(error, BaseException) else ApplicationError(str(error))
        found = CompletionToken.decode(token)
        info = error_info(exc, task_name=found.task_name, attempts=1, workflow_id=found.workflow_id)
        return self._complete(token, None, info, timeout)

    def _complete(self, token: str, result: bytes | None, error: ErrorInfo | None, timeout: float | None) -> str:
        found = CompletionToken.decode(token)
        reply = self._reply_to()
        self._send(found.workflow_id, CompleteTask(found.position, found.generation, found.task_name, result, error,
                                                   reply))
        return self._control(self._await(reply.request_id, found.workflow_id, timeout))

    def _encode_payload(self, values: Any, what: str) -> bytes:
        try:
            return self.converter.encode(values)
        except SerializationError as exc:
            raise SerializationError(f"{what} cannot be serialized: {exc}") from exc

    def _start_message(self, workflow: Callable[..., Any] | str, args: tuple[Any, ...], kwargs: dict[str, Any],
                       id: str | None, timeout: Duration | None, request_id: str | None,
                       tags: Iterable[str]) -> tuple[str, WorkflowDefinition | None, StartWorkflow]:
        """The workflow id, definition and StartWorkflow of a start (arguments checked and encoded)."""
        tags = check_tags(tags)
        defn = self._definition(workflow)
        name = defn.name if defn else str(workflow)
        if kwargs:
            if defn is None:
                raise DefinitionError(f"keyword arguments {sorted(kwargs)} for workflow {name!r} need its "
                                      "function: pass the workflow itself to start(), not its name")
            args = positional_arguments(defn.fn, args, kwargs, skip_first=True)
        try:
            payload = self.converter.encode(args)
        except SerializationError as exc:
            raise SerializationError(f"arguments of workflow {name!r} cannot be serialized: {exc}") from exc
        workflow_id = uuid.uuid4().hex if id is None else id  # an empty id is refused, not replaced
        reply = ReplyTo(self.topic, request_id, identity=True) if request_id else self._reply_to()
        timeout_ms = to_ms(timeout) if timeout is not None else (defn.timeout_ms if defn else None)
        return workflow_id, defn, StartWorkflow(name, payload, reply=reply, timeout_ms=timeout_ms, tags=tags,
                                                trace=tracing.current_traceparent())

    def get_handle(self, workflow_id: str, workflow: Callable[..., Any] | None = None) -> WorkflowHandle:
        """A handle on an existing workflow (pass the workflow to decode its result with type hints)."""
        return WorkflowHandle(self, workflow_id, workflow_definition(workflow) if workflow else None, None)

    def signal(self, workflow_id: str, name: str, data: Any = None, timeout: float | None = 30.0) -> None:
        """Deliver signal ``name`` with ``data``.

        Raises WorkflowNotFoundError if no workflow of that id is running: the message says
        whether none exists or it has finished (with its status), and how to go on.
        """
        name = check_name("the signal name", name)
        try:
            payload = self.converter.encode([data])
        except SerializationError as exc:
            raise SerializationError(f"data of signal {name!r} cannot be serialized: {exc}") from exc
        reply = self._reply_to()
        self._send(workflow_id, SendSignal(uuid.uuid4().hex, name, payload, reply=reply))
        answer = self._await(reply.request_id, workflow_id, timeout)
        if isinstance(answer, WorkflowNotFound):
            raise self._undelivered(workflow_id, name, answer, timeout)
        self._expect(answer, SignalAccepted)

    def _undelivered(self, workflow_id: str, name: str, refusal: WorkflowNotFound,
                     timeout: float | None) -> WorkflowNotFoundError:
        """Why signal ``name`` was refused: its status tells a finished workflow from one that never existed."""
        try:
            found = self.status(workflow_id, timeout)
        except WorkflowNotFoundError:
            return WorkflowNotFoundError(f"no running workflow {workflow_id!r} to receive signal {name!r}: none has "
                                         "this id; check the id, or start the workflow first")
        except ResultTimeoutError:
            return WorkflowNotFoundError(f"{refusal.reason}: it does not exist or has finished (its status did not "
                                         "come in time to tell which); check with client.status()")
        return WorkflowNotFoundError(_not_running(workflow_id, name, found.status))

    def cancel(self, workflow_id: str, reason: str = "cancelled by a client", timeout: float | None = 30.0) -> str:
        """Cancel a running workflow (and its children); returns what the engine did.

        Its pending steps raise WorkflowCancelledError inside the workflow, which may clean
        up before it ends. Raises ControlRefusedError if the workflow is not running.
        """
        if not isinstance(reason, str):
            raise DefinitionError(f"the reason of a cancel must be a string, got {type(reason).__name__}")
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
        if not isinstance(task_id, str):
            raise ValueError(f"task id {task_id!r} is not of the form '<workflow id>/<position>' (a string, "
                             "task_info().task_id)")
        workflow_id, _, position = task_id.rpartition("/")
        if not workflow_id or not position.isdigit():
            raise ValueError(f"task id {task_id!r} is not of the form '<workflow id>/<position>'")
        return self.retry(workflow_id, (int(position),), timeout)

    def query(self, workflow_id: str, name: str, *args: Any, timeout: float | None = 30.0) -> Any:
        """Call the workflow's query handler ``name`` (see ``ctx.on_query``); its history is not changed.

        Raises QueryFailedError if the workflow declares no such query or its handler raised.
        """
        name = check_name("the query name", name)
        try:
            payload = self.converter.encode(args)
        except SerializationError as exc:
            raise SerializationError(f"arguments of query {name!r} cannot be serialized: {exc}") from exc
        reply = self._reply_to()
        self._send(workflow_id, QueryWorkflow(name, payload, reply))
        answer = self._expect(self._await(reply.request_id, workflow_id, timeout), QueryAnswer)
        if answer.error is not None:
            raise QueryFailedError(answer.error)
        return decode_one(self.converter, answer.value, None)

    def update(self, workflow_id: str, name: str, *args: Any, update_id: str | None = None,
               timeout: float | None = 30.0) -> Any:
        """Run the workflow's update handler ``name`` (see ``ctx.on_update``) and return its answer.

        The update is recorded in the workflow's history; the same ``update_id`` is applied
        once. Raises UpdateFailedError if the workflow has no such handler, is not running,
        or the handler raised.
        """
        name = check_name("the update name", name)
        try:
            payload = self.converter.encode(args)
        except SerializationError as exc:
            raise SerializationError(f"arguments of update {name!r} cannot be serialized: {exc}") from exc
        reply = self._reply_to()
        self._send(workflow_id, UpdateWorkflow(UpdateCall(_update_id(update_id), name, payload), reply))
        answer = self._expect(self._await(reply.request_id, workflow_id, timeout), QueryAnswer)
        if answer.error is not None:
            raise UpdateFailedError(answer.error)
        return decode_one(self.converter, answer.value, None)

    def status(self, workflow_id: str, timeout: float | None = 30.0) -> WorkflowDescription:
        reply = self._reply_to()
        self._send(workflow_id, GetWorkflowStatus(reply))
        answer = self._expect(self._await(reply.request_id, workflow_id, timeout), WorkflowStatusReply)
        return WorkflowDescription(workflow_id, answer.workflow_name, answer.status, answer.steps, answer.blocked)

    def close(self) -> None:
        """Release what the connection holds (a Pulsar client's producers and consumers); embedded: nothing."""
        close = getattr(self.connection, "close", None)
        if callable(close):
            close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _with_start_id(workflow_id: object, call: str) -> None:
    if workflow_id is None:
        raise DefinitionError(f"{call} needs id=: it starts the workflow of that id unless it runs already (without "
                              "one, every call would start a new workflow)")


def _arguments(args: object, what: str) -> tuple[Any, ...]:
    if isinstance(args, (str, bytes)) or not isinstance(args, (tuple, list)):
        raise DefinitionError(f"{what} is the tuple of the handler's arguments, got {type(args).__name__} "
                              f"{args!r:.60}: write {what}=({args!r:.40},)")
    return tuple(args)


def _update_id(update_id: object) -> str:
    if update_id is None:
        return uuid.uuid4().hex
    return check_name("update_id", update_id)


def _not_running(workflow_id: str, name: str, current: str) -> str:
    """What to tell about signal ``name`` refused by workflow ``workflow_id``, whose status is now ``current``."""
    if current == status.RUNNING:  # it was resumed between the refusal and the status request
        return (f"workflow {workflow_id!r} was not running when signal {name!r} arrived and runs again now "
                "(it was resumed meanwhile): send the signal again")
    if current not in (status.COMPLETED, status.FAILED, status.CANCELLED):
        return (f"workflow {workflow_id!r} is {current}, not running, so signal {name!r} was not delivered; "
                f"check it with client.status({workflow_id!r})")
    new_run = ("start a new run to receive it (client.start with a new id, or with custom_id= for one run at a "
               "time under one name)")
    how = new_run if current != status.FAILED else (
        f"resume it with client.retry({workflow_id!r}) if a task or a child failed it, then send the signal "
        f"again; or {new_run}")
    return (f"workflow {workflow_id!r} has finished ({current}), so signal {name!r} was not delivered: a finished "
            f"workflow takes no signals; {how}")
