"""Cancel and retry, end to end on the test environment; each test also runs with every message twice."""

from __future__ import annotations

from pathlib import Path

import pytest

import pulsarflow as pf
from pulsarflow.messages import CancelWorkflow
from pulsarflow.messages import client as status
from pulsarflow.testing import TestEnvironment
from tests.e2e import flows


def runs(env: TestEnvironment) -> int:
    """How many times one task message runs: executors are at-least-once, and twice here when duplicating."""
    return 2 if env.transport.duplicate else 1


def test_cancel_lets_the_workflow_clean_up_and_cancels_children_and_tasks(env: TestEnvironment) -> None:
    client = env.client()
    handle = client.start(flows.holds, "seat-7", "db", id="order-1")
    env.run_ready()
    for _ in range(2):  # the child waits for its signal; the task fails every 5 s
        env.advance(5)
    attempts_before = flows.FLAKY["db"]
    assert attempts_before >= 3
    assert client.cancel("order-1", "customer left") == "cancellation requested"
    assert handle.result() == "released seat-7"
    assert client.status("order-1").status == status.COMPLETED  # it caught the cancellation and returned
    assert client.status("order-1/0").status == status.CANCELLED  # its child was cancelled
    env.advance(60)
    assert flows.FLAKY["db"] == attempts_before  # no attempt of the cancelled task ran afterwards
    assert flows.CALLS.count("release seat-7") == runs(env)


def test_uncaught_cancellation_ends_the_workflow_cancelled(env: TestEnvironment) -> None:
    client = env.client()
    handle = client.start(flows.holds_strictly, "seat-9", id="strict-1")
    env.run_ready()
    client.cancel("strict-1", "no longer needed")
    with pytest.raises(pf.WorkflowCancelledError, match="no longer needed") as info:
        handle.result()
    assert isinstance(info.value, pf.WorkflowFailedError)
    assert ["release seat-9"] * runs(env) == flows.CALLS
    assert client.status("strict-1").status == status.CANCELLED
    with pytest.raises(pf.WorkflowCancelledError):
        client.get_handle("strict-1").result()


def test_cancel_twice_is_applied_once_and_a_finished_workflow_refuses(env: TestEnvironment) -> None:
    client = env.client()
    handle = client.start(flows.holds_strictly, "seat-1", id="strict-2")
    env.run_ready()
    first, second = client._reply_to(), client._reply_to()  # two cancels in flight at once
    client._send("strict-2", CancelWorkflow("first", first))
    client._send("strict-2", CancelWorkflow("second", second))
    assert client._control(client._await(first.request_id, "strict-2", 10)) == "cancellation requested"
    assert client._control(client._await(second.request_id, "strict-2", 10)) == "cancellation already requested"
    with pytest.raises(pf.WorkflowCancelledError, match="first"):
        handle.result()
    assert ["release seat-1"] * runs(env) == flows.CALLS
    with pytest.raises(pf.ControlRefusedError, match="is CANCELLED; only a running workflow can be cancelled"):
        client.cancel("strict-2")
    with pytest.raises(pf.ControlRefusedError, match="no workflow 'ghost'"):
        client.cancel("ghost")


def test_retry_resumes_a_failed_workflow_where_it_stopped(env: TestEnvironment, tmp_path: Path) -> None:
    flag = str(tmp_path / "fixed")
    client = env.client()
    handle = client.start(flows.resumable, flag, id="resume-1")
    with pytest.raises(pf.WorkflowFailedError, match="is missing"):
        handle.result()
    assert client.status("resume-1").status == status.FAILED
    Path(flag).write_text("fixed by hand")
    assert "resumes" in handle.retry()
    assert handle.result() == [3, "fixed by hand"]
    assert flows.CALLS.count("add 1 2") == runs(env)  # the completed step did not run again
    assert flows.FLAKY[flag] == 2 * runs(env)
    with pytest.raises(pf.ControlRefusedError, match="is COMPLETED; only a FAILED workflow can be retried"):
        handle.retry()


def test_retry_of_one_task_by_id_reruns_what_was_left_open(env: TestEnvironment, tmp_path: Path) -> None:
    flag_a, flag_b = str(tmp_path / "a"), str(tmp_path / "b")
    client = env.client()
    handle = client.start(flows.resumable_pair, flag_a, flag_b, id="pair-1")
    with pytest.raises(pf.WorkflowFailedError) as first:
        handle.result()
    failed_position = 1 if flag_a in str(first.value) else 2
    with pytest.raises(pf.ControlRefusedError, match="no failed task or child at positions \\[0\\]"):
        client.retry_task("pair-1/0")
    Path(flag_a).write_text("A")
    client.retry_task(f"pair-1/{failed_position}")
    with pytest.raises(pf.WorkflowFailedError, match="b is missing"):
        client.get_handle("pair-1").result()
    Path(flag_b).write_text("B")
    client.retry("pair-1")
    assert client.get_handle("pair-1").result() == ["A", "B"]


def test_late_outcomes_of_the_failed_run_are_ignored_after_a_retry(env: TestEnvironment, tmp_path: Path) -> None:
    from pulsarflow.errors import ErrorInfo
    from pulsarflow.messages import TaskFailed, WorkflowEngineMessage

    flag = str(tmp_path / "late")
    client = env.client()
    handle = client.start(flows.resumable, flag, id="late-1")
    with pytest.raises(pf.WorkflowFailedError):
        handle.result()
    client.retry("late-1")
    stale = TaskFailed(1, ErrorInfo("RuntimeError", "stale failure from run 0"), generation=0)
    env.transport.send(env.topics.workflow_engine, "late-1",
                       env.codec.encode(WorkflowEngineMessage("stale", "late-1", 0, stale)))
    env.run_ready()
    state = env.state("late-1")
    assert state is not None and state.status == status.FAILED  # failed by run 1's own attempt, not the stale one
    assert state.generation == 1 and "is missing" in (state.error.chain()[-1].message if state.error else "")


def test_retry_refusals_are_clear(env: TestEnvironment) -> None:
    client = env.client()
    handle = client.start(flows.holds_strictly, "x", id="running-1")
    env.run_ready()
    with pytest.raises(pf.ControlRefusedError, match="is RUNNING; only a FAILED workflow can be retried"):
        client.retry("running-1")
    with pytest.raises(pf.ControlRefusedError, match="no workflow 'ghost'"):
        client.retry("ghost")
    with pytest.raises(ValueError, match="not of the form"):
        client.retry_task("no-position")
    client.cancel("running-1")
    with pytest.raises(pf.WorkflowCancelledError):
        handle.result()


def test_continue_as_new_keeps_the_history_bounded(env: TestEnvironment) -> None:
    client = env.client()
    assert client.start(flows.summer, 23, 0, id="sum-1").result() == sum(range(1, 24))
    state = env.state("sum-1")
    assert state is not None and state.runs == 4 and len(state.commands) == 3  # the last run: 3 of 23 steps


def test_each_run_gets_its_own_children(env: TestEnvironment) -> None:
    result = env.client().start(flows.looping_children, 3, [], id="loop-1").result()
    assert result == [3, 1, 0]  # sequence(3), sequence(2), sequence(1): not the first child's result again


def test_signals_not_yet_read_carry_over_to_the_next_run(env: TestEnvironment) -> None:
    client = env.client()
    handle = client.start(flows.mailbox, [], id="mail-1")
    for letter in ("a", "b", "c"):
        client.signal("mail-1", "mail", letter)
    assert handle.result() == ["a", "b", "c"]


def test_a_long_history_is_warned_about(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    from pulsarflow.runtime import handler as engine

    monkeypatch.setattr(engine, "HISTORY_WARNING_STEPS", 40)  # the real threshold is 2,000 steps
    env = TestEnvironment(*flows.ALL)
    with caplog.at_level("WARNING", logger="pulsarflow.runtime"):
        env.client().start(flows.sequence, engine.HISTORY_WARNING_STEPS + 1).result()
    [warning] = [r.getMessage() for r in caplog.records if "steps in its history" in r.getMessage()]
    assert f"has {engine.HISTORY_WARNING_STEPS} steps" in warning and "continue_as_new" in warning


def test_queries_read_declared_state_without_changing_history(env: TestEnvironment) -> None:
    client = env.client()
    handle = client.start(flows.progress, 4, id="progress-1")
    env.run_ready()
    steps = len(env.state("progress-1").commands)  # type: ignore[union-attr]
    assert handle.query("done") == 2
    assert client.query("progress-1", "item", 1) == 101
    assert len(env.state("progress-1").commands) == steps  # type: ignore[union-attr]
    declared = "declares no query .nope. at this point; declared: \\[.done., .item.\\]"
    with pytest.raises(pf.QueryFailedError, match=declared):
        handle.query("nope")
    with pytest.raises(pf.QueryFailedError, match="IndexError"):
        handle.query("item", 9)
    client.signal("progress-1", "continue")
    assert handle.result() == 4
    assert handle.query("done") == 4  # a finished workflow still answers from its history
    with pytest.raises(pf.WorkflowNotFoundError):
        client.query("ghost", "done")


def test_updates_are_handled_answered_and_replayed(env: TestEnvironment) -> None:
    client = env.client()
    handle = client.start(flows.cart, "bo", id="cart-1")
    env.run_ready()
    assert handle.update("add", "apple") == 1
    assert client.update("cart-1", "add", "pear", update_id="u-2") == 2
    assert client.update("cart-1", "add", "pear", update_id="u-2") == 2  # the same update id is applied once
    with pytest.raises(pf.UpdateFailedError, match="an item needs a name"):
        handle.update("add", "")
    with pytest.raises(pf.UpdateFailedError, match="declares no update 'remove' at this point; declared: \\['add'\\]"):
        handle.update("remove", "apple")
    assert handle.query("items") == ["apple", "pear"]  # rebuilt by replaying the recorded updates
    client.signal("cart-1", "checkout")
    assert handle.result() == ["apple", "pear", "bo: 2"]
    with pytest.raises(pf.UpdateFailedError, match="is COMPLETED; only a running workflow takes updates"):
        handle.update("add", "late")
