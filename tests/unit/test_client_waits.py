"""What the client says when a wait for an answer ends without it, over a connection that only
reports done or not (as the Pulsar one does)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import pulsarflow as pf
from pulsarflow.codec import Codec
from pulsarflow.sdk.client import Client
from pulsarflow.topics import Topics


class SilentConnection:
    """Sends nowhere; every wait ends without an answer."""

    def send(self, topic: str, key: str, payload: bytes) -> None:
        pass

    def listen(self, topic: str, on_message: Callable[[bytes], None]) -> None:
        pass

    def engines_release(self, topic: str) -> str | None:
        return None

    def wait(self, done: Callable[[], bool], timeout_s: float | None) -> bool:
        return False


def client() -> Client:
    return Client(SilentConnection(), Codec(), Topics())


def test_a_wait_without_timeout_does_not_speak_of_none_seconds() -> None:
    with pytest.raises(pf.ResultTimeoutError) as info:
        client().get_handle("w-1").result()
    assert str(info.value) == ("no answer about workflow 'w-1': the connection stopped waiting before the answer "
                               "came (no timeout was set)")


def test_a_wait_with_a_timeout_names_it() -> None:
    with pytest.raises(pf.ResultTimeoutError, match=r"^no answer about workflow 'w-2' within 2\.5s \(is a worker"):
        client().get_handle("w-2").result(timeout=2.5)


def test_answers_nobody_waits_for_do_not_pile_up() -> None:
    from pulsarflow.messages import ClientMessage, WorkflowNotFound
    from pulsarflow.sdk.base import MAX_UNCLAIMED_ANSWERS

    c, codec = client(), Codec()
    for n in range(MAX_UNCLAIMED_ANSWERS + 5):
        c._on_answer(codec.encode(ClientMessage(f"m{n}", "wf", f"r{n}", 0, WorkflowNotFound("gone"))))
    assert len(c._answers) == MAX_UNCLAIMED_ANSWERS
    assert "r4" not in c._answers and "r5" in c._answers  # the oldest went first
    assert f"r{MAX_UNCLAIMED_ANSWERS + 4}" in c._answers
