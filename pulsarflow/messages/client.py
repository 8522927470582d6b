"""Answers consumed by clients, matched to requests by request id."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from pulsarflow.errors import ErrorInfo
from pulsarflow.messages.state import Blocked

# Values of the Avro enum WorkflowStatus.
RUNNING = "RUNNING"
COMPLETED = "COMPLETED"
FAILED = "FAILED"
CANCELLED = "CANCELLED"


@dataclass(frozen=True, slots=True)
class WorkflowCompleted:
    result: bytes


@dataclass(frozen=True, slots=True)
class WorkflowFailed:
    error: ErrorInfo


@dataclass(frozen=True, slots=True)
class WorkflowStatusReply:
    workflow_name: str
    status: str
    steps: int
    blocked: Blocked | None = None


@dataclass(frozen=True, slots=True)
class SignalAccepted:
    signal_id: str


@dataclass(frozen=True, slots=True)
class WorkflowNotFound:
    reason: str


@dataclass(frozen=True, slots=True)
class ControlAnswer:
    action: str
    accepted: bool
    detail: str


@dataclass(frozen=True, slots=True)
class QueryAnswer:
    value: bytes | None = None
    error: ErrorInfo | None = None


@dataclass(frozen=True, slots=True)
class TagIds:
    workflow_ids: tuple[str, ...]
    next_after: str | None = None


@dataclass(frozen=True, slots=True)
class CustomIdAnswer:
    workflow_id: str
    started: bool


ClientAnswer = Union[WorkflowCompleted, WorkflowFailed, WorkflowStatusReply, SignalAccepted, WorkflowNotFound,
                     ControlAnswer, QueryAnswer, TagIds, CustomIdAnswer]


@dataclass(frozen=True, slots=True)
class ClientMessage:
    message_id: str
    workflow_id: str
    request_id: str
    sent_at_ms: int
    message: ClientAnswer
