"""Stored state of the workflow engine (Avro too, versioned by ``schema_version``)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from pulsarflow.errors import ErrorInfo
from pulsarflow.messages.common import ParentRef, ReplyTo

STATE_SCHEMA_VERSION = 2  # 1: release 0.1.0; 2: blocked runs, signals as events, abandoned children

# Values of the Avro enum CommandKind.
TASK = "TASK"
TIMER = "TIMER"
CHILD = "CHILD"
SIGNAL = "SIGNAL"
SIDE_EFFECT = "SIDE_EFFECT"
PATCH = "PATCH"  # a version marker: no message, no outcome
CANCEL = "CANCEL"  # the code cancelled an earlier step (its name is that step's position): no outcome
MARKERS = (PATCH, CANCEL)  # commands that wait for no outcome


@dataclass(frozen=True, slots=True)
class Command:
    position: int
    kind: str
    name: str
    abandon: bool = False  # a child kept running when its parent closes

    def describe(self) -> str:
        return f"{self.kind.lower().replace('_', ' ')} {self.name!r}" if self.name else self.kind.lower()


@dataclass(frozen=True, slots=True)
class UpdateCall:
    update_id: str
    name: str
    args: bytes


@dataclass(frozen=True, slots=True)
class BufferedSignal:
    signal_id: str
    name: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Arrival:
    position: int
    at_ms: int
    value: bytes | None = None
    error: ErrorInfo | None = None
    update: UpdateCall | None = None  # an update applied here (position -1)
    signal: BufferedSignal | None = None  # a signal received here (position -1)

    @property
    def from_client(self) -> bool:
        """An update or a signal: what a client sent, not the outcome of a step."""
        return self.update is not None or self.signal is not None


@dataclass(frozen=True, slots=True)
class Blocked:
    reason: ErrorInfo
    position: int
    since_ms: int
    attempts: int = 0


@dataclass(frozen=True, slots=True)
class WorkflowState:
    workflow_id: str
    workflow_name: str
    input: bytes
    status: str
    started_at_ms: int
    schema_version: int = STATE_SCHEMA_VERSION
    closed_at_ms: int | None = None
    result: bytes | None = None
    error: ErrorInfo | None = None
    parent: ParentRef | None = None
    waiters: tuple[ReplyTo, ...] = ()
    commands: tuple[Command, ...] = ()
    arrivals: tuple[Arrival, ...] = ()
    buffered_signals: tuple[BufferedSignal, ...] = ()
    signal_ids: tuple[str, ...] = ()
    timeout_ms: int | None = None
    generation: int = 0
    cancel_requested: bool = False
    retry_ids: tuple[str, ...] = ()
    runs: int = 0
    tags: tuple[str, ...] = ()
    update_ids: tuple[str, ...] = ()
    cancel_ids: tuple[str, ...] = ()
    blocked: Blocked | None = None
    refused_ids: tuple[str, ...] = ()  # requests refused lately: a redelivered copy stays refused
    trace: str | None = None  # W3C traceparent of the start: the run's spans join its trace
    # Where the sealed history is (runtime/history.py): set by the runtime that stores the state, which
    # hands the engine the whole history; commands and arrivals of a stored head are only the tail.
    history_epoch: int = 0
    history_chunks: int = 0
    history_commands: int = 0
    history_arrivals: int = 0


MAX_REFUSED_IDS = 256


def refusing(state: WorkflowState, request_id: str | None) -> WorkflowState:
    """``state`` remembering that request ``request_id`` was refused (the latest ones are kept)."""
    if request_id is None or request_id in state.refused_ids:
        return state
    return replace(state, refused_ids=(state.refused_ids + (request_id,))[-MAX_REFUSED_IDS:])


def child_workflow_id(workflow_id: str, runs: int, position: int) -> str:
    """Id of the child a workflow starts at ``position``; each run after continue-as-new has its own."""
    run = f"r{runs}/" if runs else ""
    return f"{workflow_id}/{run}{position}"
