"""Builders of the messages the workflow engine sends, with deterministic ids."""

from __future__ import annotations

from typing import Any

from pulsarflow.converter import NO_VALUE
from pulsarflow.engines.outgoing import Outgoing
from pulsarflow.errors import ErrorInfo
from pulsarflow.failures import error_info
from pulsarflow.messages import (
    CancelTask,
    CancelWorkflow,
    ChildCompleted,
    ChildFailed,
    ClientMessage,
    ExecuteTask,
    ReplyTo,
    TagEngineMessage,
    TaskExecutorMessage,
    WorkflowCompleted,
    WorkflowEngineMessage,
    WorkflowFailed,
    WorkflowState,
)
from pulsarflow.messages import state as kinds
from pulsarflow.messages.state import child_workflow_id
from pulsarflow.topics import Topics


def to_workflow(topics: Topics, workflow_id: str, message: Any, now: int,
                deliver_at_ms: int | None = None, about: str = "") -> Outgoing:
    position = getattr(message, "position", "")
    run = f"@{message.generation}" if getattr(message, "generation", 0) else ""
    message_id = f"{workflow_id}:{type(message).__name__}:{position}{about}{run}"
    envelope = WorkflowEngineMessage(message_id, workflow_id, now, message)
    return Outgoing(topics.workflow_engine, workflow_id, envelope, deliver_at_ms)


def to_tag(topics: Topics, tag_key: str, message: Any, now: int, about: str) -> Outgoing:
    """A message for the tag engine, keyed by tag bucket (see :func:`pulsarflow.messages.tags.tag_key`)."""
    envelope = TagEngineMessage(f"{tag_key}:{type(message).__name__}:{about}", tag_key, now, message)
    return Outgoing(topics.tag_engine, tag_key, envelope)



def to_client(reply: ReplyTo, workflow_id: str, message: Any, now: int) -> Outgoing:
    message_id = f"{workflow_id}:{type(message).__name__}:{reply.request_id}"
    envelope = ClientMessage(message_id, workflow_id, reply.request_id, now, message)
    return Outgoing(reply.topic, reply.request_id, envelope, legacy=not reply.identity)


def to_executor(topics: Topics, task: ExecuteTask, now: int, deliver_at_ms: int | None = None) -> Outgoing:
    run = f"@{task.generation}" if task.generation else ""
    message_id = f"{task.task_id}:{task.attempt}{run}"
    envelope = TaskExecutorMessage(message_id, task.task_id, now, task)
    return Outgoing(topics.executor(task.service), task.task_id, envelope, deliver_at_ms)


def cancel_task(topics: Topics, notice: CancelTask, now: int) -> Outgoing:
    """A cancellation notice, broadcast to every executor (the one running the task stops it)."""
    envelope = TaskExecutorMessage(f"{notice.task_id}:cancel", notice.task_id, now, notice)
    return Outgoing(topics.cancellations, notice.task_id, envelope)


def stop_step(topics: Topics, state: WorkflowState, position: int, reason: str, now: int) -> Outgoing | None:
    """The notice that stops what step ``position`` started: its task is told to stop, its child is cancelled."""
    kind = state.commands[position].kind
    if kind == kinds.TASK:
        return cancel_task(topics, CancelTask(state.workflow_id, position, reason, state.generation), now)
    if kind == kinds.CHILD:
        child_id = child_workflow_id(state.workflow_id, state.runs, position)
        return to_workflow(topics, child_id, CancelWorkflow(reason), now)
    return None


def closed(topics: Topics, state: WorkflowState, waiters: list[ReplyTo], now: int,
           notify_parent: bool) -> list[Outgoing]:
    """Answers owed once a workflow has ended: to each waiting client, and to its parent."""
    if state.error is not None:
        answer: Any = WorkflowFailed(state.error)
    else:
        answer = WorkflowCompleted(state.result or NO_VALUE)
    messages = [to_client(reply, state.workflow_id, answer, now) for reply in waiters]
    parent = state.parent
    if notify_parent and parent is not None:
        child_outcome: Any = (ChildFailed(parent.position, state.error, parent.generation) if state.error is not None
                              else ChildCompleted(parent.position, state.result or NO_VALUE, parent.generation))
        messages.append(to_workflow(topics, parent.workflow_id, child_outcome, now))
    return messages


def workflow_error(exc: BaseException, state: WorkflowState) -> ErrorInfo:
    return error_info(exc, workflow_id=state.workflow_id)
