"""Embedded runtime: a message whose state backend is unreachable is kept and retried, not dropped."""

from __future__ import annotations

from pulsarflow.clock import VirtualClock
from pulsarflow.embedded import BACKEND_RETRY_MS, EmbeddedEnvironment
from pulsarflow.errors import BackendError
from pulsarflow.storage.memory import InMemoryStateStore
from tests.e2e import flows


class OutageStore(InMemoryStateStore):
    """Fails every write while ``down`` is set, like a store whose server went away."""

    def __init__(self) -> None:
        super().__init__()
        self.down = True
        self.refused = 0

    def put(self, key: str, value: bytes, expected_version: int, finished: bool = False) -> int:
        if self.down:
            self.refused += 1
            raise BackendError("store at redis://127.0.0.1:6379 is unreachable")
        return super().put(key, value, expected_version, finished=finished)


def test_messages_wait_for_the_backend_and_none_is_lost() -> None:
    clock, store = VirtualClock(), OutageStore()
    env = EmbeddedEnvironment(*flows.ALL, clock=clock, store=store)
    handle = env.client().start(flows.sequence, 3)
    env.run_until_idle(max_messages=5)  # every attempt fails: the start is put back, delayed
    assert store.refused >= 1 and env.dead_letters == [] and len(store) == 0
    store.down = False
    clock.advance(BACKEND_RETRY_MS / 1000)
    assert handle.result(timeout=60) == 0 + 1 + 2
    assert env.dead_letters == []
