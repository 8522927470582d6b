"""A test environment: the embedded runtime on a virtual clock, failing fast.

Timers of days pass in milliseconds; a crashed handler or a dead-lettered message is
re-raised at once from whatever call drives the loop (``result()``, ``run_until_idle()``).
``duplicate_messages=True`` delivers every message twice to prove handlers idempotent.
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
from pulsarflow.messages import WorkflowState
from pulsarflow.messages.events import WorkflowEvent
from pulsarflow.sdk.registry import Registry


class TestEnvironment(EmbeddedEnvironment):
    __test__ = False  # not a pytest test class

    def __init__(self, *items: Any, duplicate_messages: bool = False, **options: Any) -> None:
        self.virtual_clock = VirtualClock()
        options.setdefault("fail_fast", True)
        options.setdefault("events", True)  # every event kept in memory: see events_of()
        super().__init__(*items, clock=self.virtual_clock, duplicate_messages=duplicate_messages, **options)

    def advance(self, seconds: float) -> None:
        """Move time forward and run whatever becomes due."""
        self.virtual_clock.advance(seconds)
        self.run_ready()

    def run_ready(self) -> int:
        """Process ready messages only, without moving time."""
        count = 0
        while self.step():
            count += 1
        return count

    def state(self, workflow_id: str) -> WorkflowState | None:
        stored = self.store.get(workflow_id)
        return None if stored is None else self.codec.decode(WorkflowState, stored.value)

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
