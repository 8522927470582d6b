"""Records shared by several engines."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetrySpec:
    """How a failed task attempt is retried (exponential backoff with deterministic jitter)."""

    max_attempts: int = 3
    initial_delay_ms: int = 1_000
    backoff_coefficient: float = 2.0
    max_delay_ms: int = 60_000
    jitter: float = 0.2
    non_retryable: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ReplyTo:
    topic: str
    request_id: str
    identity: bool = False  # set by clients that read writer identities (0.1.0 clients do not)


@dataclass(frozen=True, slots=True)
class ParentRef:
    workflow_id: str
    position: int
    generation: int = 0


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message set aside with the reason (built by ``pulsarflow.runtime.deadletters``)."""

    topic: str
    reason: str
    payload: bytes
    size: int
    at_ms: int
    key: str = ""
    kind: str = ""
    attempts: int = 0
    sha256: str = ""
    truncated: bool = False
