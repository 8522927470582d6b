"""Awaitable steps of a workflow: futures resolved by the replay driver, and their combinations.

A :class:`Step` is one recorded step (task, timer, child, signal wait, side effect).
:class:`AllOf` and :class:`AnyOf` combine steps and other combinations, at any depth.
Every resolution carries the index of the arrival that caused it (``order``), so which
outcome came first is decided by the history, the same on every replay.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from typing import Any


class Awaitable:
    """What workflow code may await: a step or a combination of them."""

    def ready(self) -> bool:
        raise NotImplementedError

    def failed(self) -> bool:
        """Ready, and awaiting it raises."""
        raise NotImplementedError

    @property
    def order(self) -> int:
        """Index of the arrival that made it ready (-1 while it is not)."""
        raise NotImplementedError

    def outcome(self) -> Any:
        raise NotImplementedError

    def pending(self) -> list[Step]:
        """The steps under this one that have no outcome yet, in the order they were written."""
        raise NotImplementedError

    def cancel(self) -> None:
        """Cancel every step under this one that has no outcome yet (see :meth:`Step.cancel`)."""
        for step in self.pending():
            step.cancel()

    def __await__(self) -> Generator[Any, None, Any]:
        while not self.ready():
            yield self
        return self._settle()

    def _settle(self) -> Any:
        return self.outcome()


class Step(Awaitable):
    """One recorded step at a history position."""

    __slots__ = ("_canceller", "_order", "done", "error", "position", "value")

    def __init__(self, position: int, canceller: Callable[[Step], None] | None = None) -> None:
        self.position = position
        self.done = False
        self.value: Any = None
        self.error: BaseException | None = None
        self._order = -1
        self._canceller = canceller

    def resolve(self, value: Any, error: BaseException | None, order: int) -> None:
        self.done, self.value, self.error, self._order = True, value, error, order

    def ready(self) -> bool:
        return self.done

    def failed(self) -> bool:
        return self.done and self.error is not None

    @property
    def order(self) -> int:
        return self._order

    def outcome(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.value

    def pending(self) -> list[Step]:
        return [] if self.done else [self]

    def cancel(self) -> None:
        """Stop waiting for this step: awaiting it raises ``StepCancelledError``.

        A task is told to stop (its result is ignored), a child is cancelled, a timer is
        dropped and a signal wait claims no signal. Recorded, so replays do the same.
        Nothing happens if the step already has its outcome.
        """
        if not self.done and self._canceller is not None:
            self._canceller(self)

    def __repr__(self) -> str:
        return f"Step({self.position}, done={self.done})"


class AllOf(Awaitable):
    """Waits for every member; raises the first failure (in arrival order) as soon as it arrives."""

    def __init__(self, members: Sequence[Awaitable]) -> None:
        self.members = list(members)

    def _first_failure(self) -> Awaitable | None:
        failed = [m for m in self.members if m.failed()]
        return min(failed, key=lambda m: m.order) if failed else None

    def ready(self) -> bool:
        return all(m.ready() for m in self.members) or self._first_failure() is not None

    def failed(self) -> bool:
        return self._first_failure() is not None

    @property
    def order(self) -> int:
        if not self.ready():
            return -1
        failure = self._first_failure()
        if failure is not None:
            return failure.order
        return max((m.order for m in self.members), default=-1)

    def outcome(self) -> list[Any]:
        failure = self._first_failure()
        if failure is not None:
            failure.outcome()
        return [m.outcome() for m in self.members]

    def pending(self) -> list[Step]:
        return [s for m in self.members for s in m.pending()]


class AnyOf(Awaitable):
    """Waits for the first member to finish and returns its outcome (raising if it failed).

    After it is awaited, ``winner`` is the member that finished first and ``index`` its
    place in the arguments. With ``cancel_losers=True`` the other members are cancelled.
    """

    def __init__(self, members: Sequence[Awaitable], cancel_losers: bool = False) -> None:
        self.members = list(members)
        self.cancel_losers = cancel_losers

    @property
    def index(self) -> int:
        """Place of the first member to finish (-1 while none has)."""
        done = [(m.order, i) for i, m in enumerate(self.members) if m.ready()]
        return min(done)[1] if done else -1

    @property
    def winner(self) -> Awaitable | None:
        i = self.index
        return None if i < 0 else self.members[i]

    def ready(self) -> bool:
        return any(m.ready() for m in self.members)

    def failed(self) -> bool:
        winner = self.winner
        return winner is not None and winner.failed()

    @property
    def order(self) -> int:
        winner = self.winner
        return -1 if winner is None else winner.order

    def outcome(self) -> Any:
        winner = self.winner
        assert winner is not None, "outcome() of an AnyOf that is not ready"
        return winner.outcome()

    def pending(self) -> list[Step]:
        return [] if self.ready() else [s for m in self.members for s in m.pending()]

    def _settle(self) -> Any:
        if self.cancel_losers:
            for i, member in enumerate(self.members):
                if i != self.index:
                    member.cancel()
        return self.outcome()
