"""Client.close() releases what its connection holds, and a client is a context manager."""

from __future__ import annotations

from collections.abc import Callable

import pulsarflow as pf
from pulsarflow.codec import Codec
from pulsarflow.topics import Topics


class Held:
    def __init__(self) -> None:
        self.closed = 0

    def send(self, topic: str, key: str, payload: bytes) -> None: ...

    def listen(self, topic: str, on_message: Callable[[bytes], None]) -> None: ...

    def engines_release(self, topic: str) -> str | None:
        return None

    def wait(self, done: Callable[[], bool], timeout_s: float | None) -> bool:
        return done()

    def wait_or_explain(self, done: Callable[[], bool], timeout_s: float | None) -> str | None:
        return None

    def close(self) -> None:
        self.closed += 1


def test_close_closes_the_connection_once_and_with_closes_it_at_the_end() -> None:
    held = Held()
    with pf.Client(held, Codec(), Topics()) as client:
        assert held.closed == 0
    assert held.closed == 1
    client.close()
    assert held.closed == 2


def test_an_embedded_client_closes_without_closing_its_environment() -> None:
    @pf.workflow
    async def answer(ctx: pf.WorkflowContext) -> int:
        return 42

    env = pf.EmbeddedEnvironment(answer)
    env.client().close()
    assert env.client().start(answer).result(timeout=10) == 42
