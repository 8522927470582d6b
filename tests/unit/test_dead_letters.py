"""Dead letters always fit under the broker's limit and say why in words."""

from __future__ import annotations

import hashlib

import pytest

from pulsarflow.codec import HEADER_SIZE, Codec
from pulsarflow.messages import DeadLetter, GetWorkflowStatus, ReplyTo, WorkflowEngineMessage
from pulsarflow.runtime import deadletters
from pulsarflow.runtime.limits import DEFAULT_MAX_MESSAGE_BYTES, message_budget
from tests.e2e import flows

CODEC = Codec()
FIVE_MB = 5 * 1024 * 1024


def test_a_payload_near_the_brokers_limit_is_cut_to_a_prefix_with_its_size_and_hash() -> None:
    payload = bytes(range(256)) * (FIVE_MB // 256 - 64)
    letter = deadletters.build_dead_letter("persistent://t/n/in", payload, "why " * 2_000, deadletters.UNDECODABLE, 1)
    encoded = CODEC.encode(letter)
    assert len(encoded) < message_budget(DEFAULT_MAX_MESSAGE_BYTES)
    assert letter.truncated and letter.payload == payload[:deadletters.PREFIX_BYTES] and letter.size == len(payload)
    assert letter.sha256 == hashlib.sha256(payload).hexdigest()
    assert f"the first 65,536 of {len(payload):,} bytes are kept" in letter.reason
    assert "cannot be replayed" in letter.reason
    assert len(letter.reason) < deadletters.REASON_CHARS + 300


def test_a_small_payload_is_kept_whole_and_the_letter_reads_back() -> None:
    letter = deadletters.build_dead_letter("t", b"abc", "because", deadletters.CRASH, 7, key="wf-1", attempts=3)
    assert CODEC.decode(DeadLetter, CODEC.encode(letter)) == letter
    assert (letter.truncated, letter.payload, letter.size, letter.kind, letter.attempts) == (
        False, b"abc", 3, "crash", 3)


def test_letters_of_the_previous_release_read_with_defaults() -> None:
    old = Codec(CODEC.folder / "history" / "0.1.0")
    letter = CODEC.decode_version(DeadLetter, old.encode(DeadLetter("t", "r", b"p", 1, 2)), "0.1.0")
    assert (letter.key, letter.kind, letter.attempts, letter.sha256, letter.truncated) == ("", "", 0, "", False)



def test_an_unknown_union_branch_is_explained_as_a_newer_release(env) -> None:  # type: ignore[no-untyped-def]
    payload = bytearray(CODEC.encode(WorkflowEngineMessage("id", "wf", 1, GetWorkflowStatus(ReplyTo("t", "r")))))
    payload[HEADER_SIZE + 7] = 60  # the union index of ``message`` (zigzag 30): no such branch in this release
    env.transport.send(env.topics.workflow_engine, "wf", bytes(payload))
    env.run_until_idle()
    [letter] = env.dead_letters
    assert letter.kind == deadletters.UNDECODABLE
    assert "unknown union branch 30 in WorkflowEngineMessage.message (this release knows " in letter.reason
    assert "written by a newer release?" in letter.reason and "IndexError" not in letter.reason


@pytest.mark.parametrize(("payload", "explanation"), [
    (b"", "an empty message"),
    (b'{"workflow": "x"}', "are text"),
    (b"\x04id\x04w", "the message ends inside WorkflowEngineMessage.workflow_id"),
    (b"\x04i\xff", "WorkflowEngineMessage.message_id is not UTF-8 text"),
    (b"\x01", "negative length"),
])
def test_undecodable_bytes_are_explained(env, payload: bytes, explanation: str) -> None:  # type: ignore[no-untyped-def]
    env.transport.send(env.topics.workflow_engine, "k", payload)
    env.run_until_idle()
    [letter] = env.dead_letters
    assert explanation in letter.reason and letter.payload == payload


def test_five_megabytes_of_garbage_leave_a_letter_that_fits(env) -> None:  # type: ignore[no-untyped-def]
    garbage = b"\x02" + bytes(FIVE_MB - 2048)
    sizes: list[int] = []
    original = env.transport.send

    def measure(topic: str, key: str, payload: bytes, deliver_at_ms: int | None = None) -> None:
        if topic == env.topics.dead_letters:
            sizes.append(len(payload) + len(key))
        original(topic, key, payload, deliver_at_ms)

    env.transport.send = measure
    env.transport.send(env.topics.workflow_engine, "k", garbage)
    handle = env.client().start(flows.sequence, 2)
    assert handle.result(timeout=60) == 1  # the rest of the load is not held back
    [letter] = env.dead_letters
    assert letter.truncated and letter.size == len(garbage) and sizes[0] < DEFAULT_MAX_MESSAGE_BYTES
