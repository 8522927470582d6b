"""A test environment: the embedded runtime on a virtual clock, failing fast.

Timers of days pass in milliseconds; a crashed handler or a dead-lettered message is
re-raised at once from whatever call drives the loop (``result()``, ``run_until_idle()``,
``advance()``). ``duplicate_messages=True`` delivers every message twice to prove handlers
idempotent.

Time moves only when told to:

- ``run_until_idle()`` (or ``run_ready()``) runs what is due now; the clock stays put.
- ``advance(seconds)`` runs what is due now, then moves the clock ``seconds`` ahead timer
  by timer, each timer firing at its own time, in order.
- ``advance_until_idle(max_seconds)`` does the same but stops once nothing is left to run.
- ``handle.result(timeout=...)`` skips from timer to timer until the answer comes; its
  ``timeout`` counts real (wall-clock) seconds, not virtual ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pulsarflow import replaycheck
from pulsarflow.clock import VirtualClock
from pulsarflow.embedded import EmbeddedEnvironment
from pulsarflow.errors import DefinitionError, WorkflowNotFoundError
from pulsarflow.events.memory import InMemoryEventStore
from pulsarflow.interpreter.registry import Registry
from pulsarflow.messages import WorkflowState
from pulsarflow.messages.events import WorkflowEvent
from pulsarflow.runtime.history import whole_state


class TestEnvironment(EmbeddedEnvironment):
    __test__ = False  # not a pytest test class

    def __init__(self, *items: Any, duplicate_messages: bool = False, **options: Any) -> None:
        self.virtual_clock = VirtualClock()
        options.setdefault("fail_fast", True)
        options.setdefault("events", True)  # every event kept in memory: see events_of()
        super().__init__(*items, clock=self.virtual_clock, duplicate_messages=duplicate_messages, **options)

    def run_ready(self) -> int:
        """Process the messages due now, without moving time (the same as ``run_until_idle()``)."""
        return self.run_until_idle()

    def advance(self, seconds: float) -> int:
        """Let ``seconds`` of virtual time pass; returns how many messages were processed.

        The work due now runs first, at the current time. Then the clock moves to each timer
        due on the way, in order, and runs what it brings, so a timer fires at its own time
        (and the steps it starts see that time), not at the end. The clock ends at now + seconds.
        """
        if seconds < 0:
            raise ValueError(f"advance() moves time forward: got {seconds:g} seconds")
        return self._advance_to(self.virtual_clock.now_ms() + int(seconds * 1000), stop_when_idle=False)

    def advance_until_idle(self, max_seconds: float) -> int:
        """Like ``advance(max_seconds)``, but stop as soon as nothing is left to run.

        The clock ends at the last timer that fired when none remains, else at the bound
        (``max_seconds`` is required: a schedule always has a next fire). Returns how many
        messages were processed.
        """
        if max_seconds < 0:
            raise ValueError(f"max_seconds must be at least 0, got {max_seconds:g}: it bounds how far the "
                             "virtual clock may move")
        return self._advance_to(self.virtual_clock.now_ms() + int(max_seconds * 1000), stop_when_idle=True)

    def _advance_to(self, target_ms: int, stop_when_idle: bool) -> int:
        count = self.run_until_idle()
        while (due := self.transport.next_due_ms()) is not None and due <= target_ms:
            self.virtual_clock.sleep_until(due)
            count += self.run_until_idle()
        if stop_when_idle and self.transport.next_due_ms() is None:
            return count
        self.virtual_clock.sleep_until(target_ms)
        return count + self.run_until_idle()

    def state(self, workflow_id: str) -> WorkflowState | None:
        """The whole stored state of a workflow (its history chunks joined), None if it has none."""
        stored = self.store.get(workflow_id)
        return None if stored is None else whole_state(self.store, self.codec, workflow_id, stored)

    def events_of(self, workflow_id: str) -> list[WorkflowEvent]:
        """The events recorded for one workflow, oldest first, from the default in-memory event store."""
        if not isinstance(self.events, InMemoryEventStore):
            raise DefinitionError("events_of() reads the in-memory event store; build the environment without "
                                  "events=... (or with events=True) to use it")
        return self.events.history(workflow_id)

    def save_history(self, workflow_id: str, folder: Path) -> Path:
        """Write one workflow's history as a ``.wfstate`` file, for ``pulsarflow replay check``."""
        state = self.state(workflow_id)
        if state is None:
            raise WorkflowNotFoundError(f"no workflow {workflow_id!r} in this environment")
        return replaycheck.save_history(state, folder, self.codec)

    def replay_check(self, workflow_ids: Iterable[str], *items: Any) -> list[replaycheck.ReplayResult]:
        """Replay these workflows' histories with the code in ``items`` (new versions of the workflows)."""
        histories = []
        for workflow_id in workflow_ids:
            state = self.state(workflow_id)
            if state is None:
                raise WorkflowNotFoundError(f"no workflow {workflow_id!r} in this environment")
            histories.append(state)
        return replaycheck.check_all(histories, Registry(items))
