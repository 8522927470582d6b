"""What an engine returns: its new state and the messages to publish."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pulsarflow.errors import ErrorInfo

S = TypeVar("S")


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message to publish on ``topic`` with routing ``key``, optionally delayed."""

    topic: str
    key: str
    message: Any
    deliver_at_ms: int | None = None
    legacy: bool = False  # for a client of release 0.1.0: encoded as that release reads it


@dataclass(frozen=True, slots=True)
class Decision(Generic[S]):
    """An engine's answer: ``state`` is the state to save (``unchanged`` when nothing to save).

    ``errors`` are errors the decision handled that neither the state nor the messages
    carry (the error of a task attempt that will be retried), for the event storage.
    """

    state: S | None
    outgoing: list[Outgoing] = field(default_factory=list)
    unchanged: bool = False
    errors: tuple[ErrorInfo, ...] = ()
