"""Every encoded message and stored state carries its writer's schema identity; readers resolve it.

Bytes written by release 0.1.0 (which wrote no identity) and by any frozen release are read as
their writer wrote them; bytes of an unknown (newer) writer are refused, never misread.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pulsarflow import schemas
from pulsarflow.codec import BASELINE_RELEASE, HEADER_SIZE, MARKER, Codec
from pulsarflow.errors import DecodeError
from pulsarflow.messages import RECORD_CLASSES, TimerFired, WorkflowEngineMessage
from pulsarflow.testing import TestEnvironment
from tests.e2e import semantics_flows as sf
from tests.unit.test_codec import strategy

CURRENT = Codec()
BASELINE = Codec(schemas.schema_dir() / "history" / BASELINE_RELEASE)


def test_encoded_bytes_start_with_the_writer_identity() -> None:
    data = CURRENT.encode(TimerFired(3, "SLEEP"))
    assert data[:2] == MARKER and data[2:HEADER_SIZE] == CURRENT.fingerprint("TimerFired")
    assert CURRENT.writer_release(TimerFired, data) == "current"
    assert CURRENT.writer_release(TimerFired, BASELINE.encode(TimerFired(3, "SLEEP"))[HEADER_SIZE:]) == "0.1.0"


@pytest.mark.parametrize("name", sorted(n for n in RECORD_CLASSES if n in BASELINE.named))
@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_bytes_of_release_0_1_0_decode_with_and_without_its_identity(name: str, data: st.DataObject) -> None:
    value = data.draw(strategy(name, codec=BASELINE))
    stamped = BASELINE.encode(value)
    assert CURRENT.decode(name, stamped) == value  # found by its fingerprint in schemas/history/
    assert CURRENT.decode(name, stamped[HEADER_SIZE:]) == value  # as 0.1.0 wrote it: no identity


def test_an_unknown_writer_is_refused_naming_both_identities() -> None:
    data = bytearray(CURRENT.encode(TimerFired(3, "SLEEP")))
    data[2:HEADER_SIZE] = b"\x01" * 8
    with pytest.raises(DecodeError, match="written with schema 0101010101010101 of pulsarflow.TimerFired.*"
                                          "written by a newer release"):
        CURRENT.decode(TimerFired, bytes(data))


def test_a_run_sleeping_under_release_0_1_0_completes_after_the_upgrade() -> None:
    """The state and the timer of a sleeping run, both as 0.1.0 wrote them, read by this release."""
    sf.BEHAVIOUR.clear()  # the workflow takes its good path
    env = TestEnvironment(*sf.ALL)
    handle = env.client().start(sf.fixable, id="up-1")
    env.run_ready()
    state = env.state("up-1")
    stored = env.store.get("up-1")
    assert state is not None and stored is not None and state.status == "RUNNING"
    assert env.store.put("up-1", BASELINE.encode(state)[HEADER_SIZE:], stored.version, finished=False) is not None
    timer = WorkflowEngineMessage("old-timer", "up-1", 0, TimerFired(0, "SLEEP"))
    env.transport.send(env.topics.workflow_engine, "up-1", BASELINE.encode(timer)[HEADER_SIZE:],
                       env.clock.now_ms() + 10_000)
    env.advance(11)
    assert handle.result(timeout=10) == "fixed"


def test_each_engine_checks_its_own_state_layout_version() -> None:
    from pulsarflow.engines.tag import TagEngine
    from pulsarflow.engines.workflow import WorkflowEngine
    from pulsarflow.messages.state import STATE_SCHEMA_VERSION
    from pulsarflow.messages.tags import TAG_STATE_SCHEMA_VERSION

    assert WorkflowEngine.state_version == STATE_SCHEMA_VERSION == 2  # blocked runs, signals as events
    assert TagEngine.state_version == TAG_STATE_SCHEMA_VERSION == 1  # unchanged since 0.1.0


def test_an_answer_to_a_client_of_release_0_1_0_is_written_as_that_release_reads_it() -> None:
    from pulsarflow.engines import messages_out as out
    from pulsarflow.messages import ClientMessage, ReplyTo, WorkflowCompleted

    old_request = BASELINE.encode(ReplyTo("persistent://public/default/pulsarflow-client-x", "r1"))
    reply = CURRENT.decode(ReplyTo, old_request[HEADER_SIZE:])
    assert reply.identity is False  # an 0.1.0 client says nothing: it reads no identities
    answer = out.to_client(reply, "w1", WorkflowCompleted(b'["done"]'), 5)
    assert answer.legacy
    written = CURRENT.encode_legacy(answer.message)
    assert written[:2] != MARKER and BASELINE.decode(ClientMessage, written, writer=BASELINE) == answer.message
    assert not out.to_client(ReplyTo("t", "r2", identity=True), "w1", WorkflowCompleted(b"1"), 5).legacy


def test_a_message_of_a_newer_release_is_kept_for_the_upgraded_engines_not_dead_lettered() -> None:
    import pulsarflow as pf
    from pulsarflow.clock import VirtualClock
    from pulsarflow.errors import BackendError, NewerWriterError

    assert issubclass(NewerWriterError, BackendError) and issubclass(NewerWriterError, DecodeError)
    env = pf.EmbeddedEnvironment(*sf.ALL, clock=VirtualClock(), fail_fast=False)
    data = bytearray(CURRENT.encode(WorkflowEngineMessage("m", "w-new", 0, TimerFired(0, "SLEEP"))))
    data[2:HEADER_SIZE] = b"\x02" * 8  # a writer schema that only a newer release knows
    env.transport.send(env.topics.workflow_engine, "w-new", bytes(data))
    env.run_until_idle()
    assert env.dead_letters == []
    assert env.transport.next_due_ms() is not None  # still there, tried again later
    env.close()
