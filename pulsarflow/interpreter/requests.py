"""What workflow code asks for at one position: one frozen request type per step kind.

The interpreter records each request's ``kind`` and ``name`` as the step's command (what a
replay checks the code against); the engine turns a new request into messages
(engines/steps.py) or an immediate outcome.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from pulsarflow.interpreter.definitions import TaskDefinition, WorkflowDefinition
from pulsarflow.messages import RetrySpec
from pulsarflow.messages import state as kinds


@dataclass(frozen=True)
class TaskRequest:
    """``ctx.task``: run a task; ``fire_at_ms`` is the deadline of all its attempts, if any."""

    kind: ClassVar[str] = kinds.TASK
    definition: TaskDefinition
    input: bytes
    retry: RetrySpec
    timeout_ms: int | None  # of one attempt
    fire_at_ms: int | None
    priority: int = 0  # among attempts of its service held back by flow control

    @property
    def name(self) -> str:
        return self.definition.name


@dataclass(frozen=True)
class ChildRequest:
    """``ctx.child``: start a child workflow (``abandon``: let it run on when this run closes)."""

    kind: ClassVar[str] = kinds.CHILD
    definition: WorkflowDefinition
    input: bytes
    timeout_ms: int | None
    abandon: bool = False

    @property
    def name(self) -> str:
        return self.definition.name


@dataclass(frozen=True)
class TimerRequest:
    """``ctx.sleep``/``ctx.sleep_until``: a durable timer firing at ``fire_at_ms``."""

    kind: ClassVar[str] = kinds.TIMER
    fire_at_ms: int
    name: str = ""


@dataclass(frozen=True)
class SignalRequest:
    """``ctx.wait_signal``: take the next signal ``name``; ``value_type`` decodes its data."""

    kind: ClassVar[str] = kinds.SIGNAL
    name: str
    fire_at_ms: int | None  # the wait's timeout, if any
    value_type: Any = None


@dataclass(frozen=True)
class SideEffectRequest:
    """``ctx.side_effect``: run ``call`` once and record its result."""

    kind: ClassVar[str] = kinds.SIDE_EFFECT
    name: str
    call: Callable[[], Any]


@dataclass(frozen=True)
class PatchRequest:
    """``ctx.patched``: a version marker, recorded and nothing else."""

    kind: ClassVar[str] = kinds.PATCH
    name: str


@dataclass(frozen=True)
class CancelRequest:
    """``step.cancel()``: the step at ``target`` ends as cancelled; its task or child is told to stop."""

    kind: ClassVar[str] = kinds.CANCEL
    target: int

    @property
    def name(self) -> str:
        return str(self.target)


StepRequest = TaskRequest | ChildRequest | TimerRequest | SignalRequest | SideEffectRequest | PatchRequest \
    | CancelRequest


def abandons(request: StepRequest) -> bool:
    """Whether the step's work outlives the run that issued it (a child started with ``abandon=True``)."""
    return isinstance(request, ChildRequest) and request.abandon
