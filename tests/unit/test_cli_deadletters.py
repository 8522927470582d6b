"""``pulsarflow deadletters list|show|replay`` over an embedded environment's dead letters."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pulsarflow.cli import main as cli_main
from pulsarflow.cli_deadletters import EmbeddedDeadLetters, main
from pulsarflow.codec import Codec
from pulsarflow.messages import ReplyTo, StartWorkflow, WorkflowEngineMessage

CODEC = Codec()



def poison(env: Any, workflow_id: str) -> Any:
    """The engine crashes on ``workflow_id`` until the returned function is called (the fix is deployed)."""
    original = env._workflows.engine.handle

    def handle(state: Any, envelope: Any, now: int) -> Any:
        if envelope.workflow_id == workflow_id:
            raise RuntimeError("a bug")
        return original(state, envelope, now)

    env._workflows.engine.handle = handle

    def fix() -> None:
        env._workflows.engine.handle = original

    return fix


def send_start(env: Any, workflow_id: str, reply_topic: str | None = None) -> None:
    start = StartWorkflow("sequence", b"[2]", reply=ReplyTo(reply_topic or env.topics.client("cli"), "r"))
    env.transport.send(env.topics.workflow_engine, workflow_id,
                       CODEC.encode(WorkflowEngineMessage("m", workflow_id, 0, start)))


def test_list_show_then_replay_once_fixed(env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    fix = poison(env, "wf-poison")
    send_start(env, "wf-poison")
    env.run_until_idle()
    queue = EmbeddedDeadLetters(env)
    assert main(["list"], queue) == 0
    listing = capsys.readouterr().out
    assert "crash" in listing and "key='wf-poison'" in listing and "crashed on this message: RuntimeError" in listing
    assert main(["show", "0"], queue) == 0
    shown = capsys.readouterr().out
    assert "attempts:  3" in shown and "StartWorkflow(workflow_name='sequence'" in shown
    fix()
    assert main(["replay", "0"], queue) == 0
    assert "0: replayed to persistent://public/default/pulsarflow-workflow-engine (key 'wf-poison')" in \
        capsys.readouterr().out
    env.run_until_idle()
    assert env.client().get_handle("wf-poison").result(timeout=60) == 1
    assert main(["list", "--json"], queue) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_replay_refuses_what_would_only_fail_again(env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    env.transport.send(env.topics.workflow_engine, "k", b"garbage")
    send_start(env, "wf-elsewhere", "persistent://public/default/elsewhere")
    big = b"\x02" + bytes(5 * 1024 * 1024 - 4096)
    env.transport.send(env.topics.workflow_engine, "k", big)
    env.run_until_idle()
    queue = EmbeddedDeadLetters(env)
    assert main(["replay", "--all"], queue) == 1
    err = capsys.readouterr().err
    assert "0: not replayed: does not decode with this release" in err and "pass --force" in err
    assert "1: not replayed: it was refused" in err
    assert f"2: not replayed: only the first 65,536 of {len(big):,} bytes were kept" in err
    assert main(["replay", "1", "--force", "--keep"], queue) == 0  # forced: back to the engine, refused again
    env.run_until_idle()
    assert len([letter for letter in env.dead_letters if letter is not None]) == 4


def test_unknown_ids_and_missing_ids_are_explained(env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    queue = EmbeddedDeadLetters(env)
    assert main(["show"], queue) == 2
    assert "needs letter ids" in capsys.readouterr().err
    assert main(["replay", "9"], queue) == 2
    assert "no dead letter 9 (known: none)" in capsys.readouterr().err


def test_the_command_is_part_of_the_pulsarflow_cli(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli_main(["deadletters", "--help"])
    assert "list,show,replay" in capsys.readouterr().out


def test_on_pulsar_a_letter_that_cannot_be_read_is_listed_and_hides_no_other() -> None:
    pulsar = pytest.importorskip("pulsar")
    from pulsarflow.messages import DeadLetter
    from pulsarflow.pulsar.deadletters import PulsarDeadLetters

    class Id:
        def __init__(self, entry: int) -> None:
            self.entry = entry

        def ledger_id(self) -> int:
            return 7

        def entry_id(self) -> int:
            return self.entry

    class Message:
        def __init__(self, entry: int, data: bytes) -> None:
            self.entry, self._data = entry, data

        def message_id(self) -> Id:
            return Id(self.entry)

        def data(self) -> bytes:
            return self._data

        def publish_timestamp(self) -> int:
            return 1_000

    class Consumer:
        def __init__(self, messages: list[Message]) -> None:
            self.messages = messages

        def receive(self, timeout_millis: int) -> Message:
            if not self.messages:
                raise pulsar.Timeout("nothing more")
            return self.messages.pop(0)

    good = CODEC.encode(DeadLetter("t", "why", b"p", 1, 2, kind="crash"))

    class Client:
        def subscribe(self, *args: Any, **kwargs: Any) -> Consumer:
            return Consumer([Message(1, b"\x00garbage"), Message(2, good)])

    letters = list(PulsarDeadLetters(Client(), "dlq").letters())
    assert [ident for ident, _ in letters] == ["7:1", "7:2"]
    assert letters[0][1].kind == "unreadable-letter" and "this letter itself cannot be read" in letters[0][1].reason
    assert letters[1][1].reason == "why"
