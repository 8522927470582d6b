"""Awaitable steps of a workflow: each is a future resolved by the replay driver."""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any


class Step:
    """One recorded step (task, timer, child, signal, side effect) at a history position."""

    __slots__ = ("done", "error", "order", "position", "value")

    def __init__(self, position: int) -> None:
        self.position = position
        self.done = False
        self.value: Any = None
        self.error: BaseException | None = None
        self.order = -1  # index of the arrival that resolved it, for ctx.any

    def resolve(self, value: Any, error: BaseException | None, order: int) -> None:
        self.done, self.value, self.error, self.order = True, value, error, order

    def ready(self) -> bool:
        return self.done

    def outcome(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.value

    def __await__(self) -> Generator[Any, None, Any]:
        while not self.ready():
            yield self
        return self.outcome()


class AllOf:
    """Waits for every step; raises the first failure (in arrival order) as soon as it arrives."""

    def __init__(self, steps: Sequence[Step]) -> None:
        self.steps = list(steps)

    def _first_failure(self) -> Step | None:
        failed = [s for s in self.steps if s.done and s.error is not None]
        return min(failed, key=lambda s: s.order) if failed else None

    def ready(self) -> bool:
        return all(s.done for s in self.steps) or self._first_failure() is not None

    def __await__(self) -> Generator[Any, None, list[Any]]:
        while not self.ready():
            yield self
        failure = self._first_failure()
        if failure is not None:
            failure.outcome()
        return [s.value for s in self.steps]


class AnyOf:
    """Waits for the first step to finish and returns its outcome (raising if it failed)."""

    def __init__(self, steps: Sequence[Step]) -> None:
        self.steps = list(steps)

    def ready(self) -> bool:
        return any(s.done for s in self.steps)

    def __await__(self) -> Generator[Any, None, Any]:
        while not self.ready():
            yield self
        first = min((s for s in self.steps if s.done), key=lambda s: s.order)
        return first.outcome()


Awaitable = Step | AllOf | AnyOf


class StepRequest:
    """What workflow code asked for at one position; the engine turns new ones into messages."""

    __slots__ = ("call", "definition", "fire_at_ms", "input", "kind", "name", "retry", "timeout_ms")

    def __init__(self, kind: str, name: str, **details: Any) -> None:
        self.kind = kind
        self.name = name
        self.input: bytes = details.get("input", b"")
        self.definition: Any = details.get("definition")
        self.fire_at_ms: int | None = details.get("fire_at_ms")
        self.timeout_ms: int | None = details.get("timeout_ms")
        self.retry: Any = details.get("retry")
        self.call: Any = details.get("call")
