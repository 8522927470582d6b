"""What the simulated network records for the invariants, and how it writes its history."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Faults:
    duplicate: float = 0.0  # a delivered message comes again in the same instant
    late_duplicate: float = 0.0  # ... or a minute later (workflow engine input only)
    crash: float = 0.0  # outgoing messages are published, the state is not saved, the input comes again
    disorder: float = 0.0  # a message is picked although an older one of its key is due


@dataclass
class Attempt:
    workflow_id: str
    position: int
    generation: int
    attempt: int
    start: int
    spec: dict[str, Any]
    error: str | None  # the exception it raised
    first: bool  # the first time this attempt ran (not a redelivery)


@dataclass
class Trace:
    """What the invariants read, gathered while the network runs."""

    closes: dict[tuple[str, int], tuple[int, int]] = field(default_factory=dict)  # run -> (time, delivery)
    parents: dict[str, tuple[str, int]] = field(default_factory=dict)  # child id -> parent run
    cancelled: dict[str, int] = field(default_factory=dict)  # workflow id -> when it first took a cancel
    accepted: dict[str, list[Any]] = field(default_factory=dict)  # signal data a running workflow recorded
    consumed: dict[tuple[str, int], dict[int, Any]] = field(default_factory=dict)  # run -> wait -> data
    attempts: list[Attempt] = field(default_factory=list)
    told_to_cancel: set[tuple[str, int]] = field(default_factory=set)  # (task id, generation)
    reacted: list[str] = field(default_factory=list)
    crashes: list[str] = field(default_factory=list)
    nesting_refused: set[str] = field(default_factory=set)
    history: list[tuple[int, str, str, str]] = field(default_factory=list)  # (time, topic, key, what)


def describe(message: Any) -> str:
    """A message for the history: its type and fields, without payloads, retry policies and tracebacks."""
    fields = getattr(message, "__dataclass_fields__", None)
    if fields is None:
        return repr(message)
    shown = []
    for name in fields:
        value = getattr(message, name)
        if name in ("input", "reply", "retry", "call") or (isinstance(value, bytes) and len(value) > 60):
            continue
        shown.append(f"{name}={value.type if name == 'error' and value is not None else describe(value)}")
    return f"{type(message).__name__}({', '.join(shown)})"
