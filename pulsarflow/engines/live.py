"""The workflow cache: live workflows kept between messages, so a message costs what it adds.

Replaying a workflow from the start on every message makes a step cost grow with the
history. An engine instance keeps, for the workflows it handled last, the replay that
stopped where the state it returned stands: its suspended coroutine, its steps and
buffered signals. The next message for that workflow resumes it with only the arrivals
that message added. A workflow's messages go to one instance (Key_Shared), so the cache
usually holds; when it does not (a restart, a key that moved, an eviction, a decision
that was not saved so the stored state is another one) the engine replays from the
history as before, and both paths decide the same.

A cached replay is used only when the state it is asked to go on from is the one it left
plus new arrivals at the end (same run, same commands, the same arrivals first); anything
else is a miss. A workflow whose code changes while it runs is only checked against its
history on a miss, as in every engine with a sticky cache: deploys restart the engines.
"""

from __future__ import annotations

from dataclasses import dataclass

from pulsarflow.interpreter.replay import Replay
from pulsarflow.messages import Arrival, WorkflowState

DEFAULT_SIZE = 1_000  # live workflows per engine instance; 0 turns the cache off


@dataclass
class _Live:
    after: WorkflowState
    replay: Replay


class LiveWorkflows:
    """Live replays by workflow id, bounded (least recently used first out).

    Thread-safe the way the engines need it: a replay is taken out while a message uses
    it, so two handlers never share one; each dict operation is atomic.
    """

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        if size < 0:
            raise ValueError(f"the workflow cache size must be 0 (off) or more, got {size}")
        self.size = size
        self.hits = self.misses = 0
        self._live: dict[str, _Live] = {}

    def take(self, state: WorkflowState) -> Replay | None:
        """The live replay that goes on from ``state``, taken out of the cache; None on a miss."""
        live = self._live.pop(state.workflow_id, None)
        if live is None or not _continues(live.after, state):
            self.misses += 1
            return None
        self.hits += 1
        return live.replay

    def keep(self, after: WorkflowState, replay: Replay) -> None:
        """Keep ``replay``, which stopped where ``after`` stands (a run still waiting on something)."""
        if self.size == 0 or replay.finished or replay.fatal is not None:
            return
        self._live[after.workflow_id] = _Live(after, replay)
        while len(self._live) > self.size:
            try:
                del self._live[next(iter(self._live))]
            except (KeyError, StopIteration, RuntimeError):  # another thread changed it meanwhile
                break

    def forget(self, workflow_id: str) -> None:
        self._live.pop(workflow_id, None)

    def __len__(self) -> int:
        return len(self._live)


def _continues(after: WorkflowState, state: WorkflowState) -> bool:
    """Whether ``state`` is ``after`` plus arrivals at the end.

    Within one run (same ``generation`` and ``runs``) a history only grows at its end, so
    the state a message brings from the one the cache left holds the same tuples or the
    same entries at the same places: identity of the last known entry settles it in
    O(1). A state read back from the store (new objects) is compared entry by entry.
    """
    if (state.generation != after.generation or state.runs != after.runs or state.blocked is not None
            or state.workflow_name != after.workflow_name or state.started_at_ms != after.started_at_ms
            or not (state.input is after.input or state.input == after.input)):
        return False
    return _same(after.commands, state.commands, whole=True) and _same(after.arrivals, state.arrivals, whole=False)


def _same(known: tuple[object, ...], now: tuple[object, ...], whole: bool) -> bool:
    """Whether ``now`` is ``known`` (``whole``) or starts with it."""
    if now is known:
        return True
    n = len(known)
    if len(now) < n or (whole and len(now) != n):
        return False
    if n == 0 or now[n - 1] is known[n - 1]:
        return True
    return now[:n] == known


class ArrivedPositions:
    """The positions of a workflow's steps that have their outcome, kept as its arrivals grow.

    The set of every arrival's position, built afresh for each message, is O(history) per
    step; kept per workflow (bounded like the cache) and extended by what a message adds,
    it is O(1). A history that did not just grow (another run, a state read back from the
    store) is counted again.
    """

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self.size = size
        self._known: dict[str, tuple[int, int, tuple[Arrival, ...], set[int]]] = {}

    def of(self, state: WorkflowState) -> set[int]:
        """The positions that have arrived in ``state`` (do not change the set returned)."""
        arrivals = state.arrivals
        entry = self._known.pop(state.workflow_id, None)
        if entry is not None and entry[0] == state.generation and entry[1] == state.runs \
                and _same(entry[2], arrivals, whole=False):
            positions = entry[3]
            positions.update(a.position for a in arrivals[len(entry[2]):])
        else:
            positions = {a.position for a in arrivals}
        if self.size:
            self._known[state.workflow_id] = (state.generation, state.runs, arrivals, positions)
            while len(self._known) > self.size:
                try:
                    del self._known[next(iter(self._known))]
                except (KeyError, StopIteration, RuntimeError):  # another thread changed it meanwhile
                    break
        return positions
