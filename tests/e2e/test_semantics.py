"""What users rely on, each seen broken once: signals never lost to an abandoned wait, nothing of a
closed run runs afterwards, a bad deploy blocks runs instead of failing them, failures match like
``except``, ``ctx.all``/``ctx.any`` nest, keyword arguments. Once, twice and batched."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import pulsarflow as pf
from pulsarflow.interpreter.definitions import positional_arguments
from pulsarflow.messages import events as ev
from pulsarflow.messages import state as kinds
from pulsarflow.messages.client import CANCELLED, COMPLETED, RUNNING
from pulsarflow.testing import TestEnvironment
from pulsarflow.visibility.model import fold
from tests.e2e import semantics_flows as sf
from tests.e2e.conftest import DELIVERIES


@pytest.fixture(params=list(DELIVERIES))
def kit(request: pytest.FixtureRequest) -> Iterator[TestEnvironment]:
    sf.RUNS.clear()
    sf.BEHAVIOUR.clear()
    duplicate, batch_size = DELIVERIES[request.param]
    environment = TestEnvironment(*sf.ALL, duplicate_messages=duplicate, batch_size=batch_size,
                                  raise_on_blocked=False)
    yield environment
    environment.close()
    sf.BEHAVIOUR.clear()


# -- signals and abandoned waits ---------------------------------------------------------


def test_signals_reach_a_heartbeat_loop_after_the_timer_won_many_times(kit: TestEnvironment) -> None:
    client = kit.client()
    handle = client.start(sf.heartbeat_loop, 3, id="hb")
    kit.advance(60 * 5 + 1)  # the heartbeat wins five times: five abandoned waits for "msg"
    for i in range(3):
        client.signal("hb", "msg", f"m{i}")
        kit.advance(30)
    assert handle.result(timeout=30) == ["m0", "m1", "m2"]


def test_a_signal_goes_to_the_wait_awaited_now_not_to_the_abandoned_one(kit: TestEnvironment) -> None:
    client = kit.client()
    handle = client.start(sf.any_then_wait, id="atw")
    kit.advance(6)  # the sleep wins the any; its wait for "x" is abandoned
    client.signal("atw", "x", "late")
    assert handle.result(timeout=30) == "None/late"


def test_a_signal_sent_before_any_wait_is_buffered_for_the_first_one(kit: TestEnvironment) -> None:
    client = kit.client()
    handle = client.start(sf.any_then_wait, id="early")
    client.signal("early", "x", "one")
    kit.run_until_idle()
    client.signal("early", "x", "two")
    assert handle.result(timeout=30) == "one/two"


# -- nothing of a closed run runs afterwards -------------------------------------------------


def test_a_retry_of_a_losing_task_does_not_run_after_the_workflow_completed(kit: TestEnvironment) -> None:
    handle = kit.client().start(sf.loser_is_retrying, "L", id="loser")
    assert handle.result(timeout=30) == "None"
    kit.advance(2 * 3600)  # the retry was due an hour after the first attempt
    assert sf.RUNS["L"] == {1}
    cancels = [e for e in kit.events_of("loser") if e.type == ev.TASK_CANCEL_REQUESTED]
    assert [e.position for e in cancels] == [0]  # the attempt in flight is told to stop


def test_a_running_child_is_cancelled_when_its_parent_completes(kit: TestEnvironment) -> None:
    client = kit.client()
    assert client.start(sf.leaves_children, False, id="p-cancel").result(timeout=30) == "parent done"
    kit.advance(200)
    assert client.status("p-cancel/0").status == CANCELLED
    assert "left" not in sf.RUNS


def test_an_abandoned_child_runs_on_after_its_parent_completes(kit: TestEnvironment) -> None:
    client = kit.client()
    assert client.start(sf.leaves_children, True, id="p-abandon").result(timeout=30) == "parent done"
    kit.advance(200)
    assert client.status("p-abandon/0").status == COMPLETED
    assert sf.RUNS["left"] == {1}


def test_cancel_losers_stops_the_losing_task_and_its_retry(kit: TestEnvironment) -> None:
    handle = kit.client().start(sf.cancels_a_loser, "C", id="cl")
    assert handle.result(timeout=30) == "None then cancelled"
    kit.advance(2 * 3600)
    assert sf.RUNS["C"] == {1}
    state = kit.state("cl")
    assert state is not None and [c.kind for c in state.commands] == [kinds.TASK, kinds.TIMER, kinds.CANCEL]


# -- a bug or a bad deploy blocks the run; fixed code resumes it --------------------------------


def test_a_bug_in_the_workflow_code_blocks_the_run_and_fixed_code_resumes_it(kit: TestEnvironment) -> None:
    sf.BEHAVIOUR["fixable"] = "bug"
    client = kit.client()
    handle = client.start(sf.fixable, id="fix-1")
    kit.advance(11)
    described = client.status("fix-1")
    assert described.status == RUNNING and described.blocked is not None
    assert described.blocked.reason.type == "KeyError" and described.blocked.position == 1
    assert "BLOCKED at step 1: KeyError" in described.describe()
    assert [e.type for e in kit.events_of("fix-1")].count(ev.WORKFLOW_BLOCKED) == 1
    summary = None
    for event in kit.events_of("fix-1"):  # what lists and the dashboard show
        summary = fold(summary, event)
    assert summary is not None and summary.status == "BLOCKED" and summary.error is not None
    assert summary.error.type == "KeyError"
    kit.advance(60)  # replayed on its backoff timer: still the same bug, still blocked, nothing lost
    assert client.status("fix-1").blocked is not None
    sf.BEHAVIOUR["fixable"] = "fixed"  # compatible code is deployed
    assert handle.result(timeout=30) == "fixed"  # the next backoff timer resumes it by itself
    assert ev.WORKFLOW_UNBLOCKED in [e.type for e in kit.events_of("fix-1")]


def test_retry_resumes_a_blocked_run_at_once(kit: TestEnvironment) -> None:
    sf.BEHAVIOUR["fixable"] = "bug"
    client = kit.client()
    handle = client.start(sf.fixable, id="fix-2")
    kit.advance(11)
    assert client.status("fix-2").blocked is not None
    sf.BEHAVIOUR["fixable"] = "fixed"
    client.retry("fix-2")
    kit.run_ready()
    assert handle.done() and handle.result(timeout=5) == "fixed"


def test_failure_exceptions_make_an_exception_type_fail_the_workflow(kit: TestEnvironment) -> None:
    with pytest.raises(pf.WorkflowFailedError, match="KeyError"):
        kit.client().start(sf.fails_on_lookup).result(timeout=30)


def test_the_fail_fast_test_kit_raises_at_once_for_a_blocked_run() -> None:
    sf.BEHAVIOUR["fixable"] = "bug"
    env = TestEnvironment(*sf.ALL)
    try:
        with pytest.raises(pf.WorkflowBlockedError, match="blocked at step 1: KeyError.*ApplicationError"):
            env.client().start(sf.fixable).result(timeout=30)
    finally:
        sf.BEHAVIOUR.clear()


# -- failures match like except ----------------------------------------------------------------


def test_non_retryable_matches_subclasses(kit: TestEnvironment) -> None:
    result = kit.client().start(sf.catches_failures, "u", "unicode").result(timeout=30)
    assert result == "UnicodeDecodeError after 1; value=True declined=False fatal=False"
    assert sf.RUNS["u"] == {1}


def test_a_workflow_matches_a_task_failure_by_its_own_class(kit: TestEnvironment) -> None:
    result = kit.client().start(sf.catches_failures, "d", "declined").result(timeout=30)
    assert result == "PaymentDeclined after 1; value=True declined=True fatal=False"


def test_application_error_non_retryable_and_next_retry_delay(kit: TestEnvironment) -> None:
    client = kit.client()
    final = client.start(sf.catches_failures, "f", "app-final").result(timeout=30)
    assert final == "Fatal after 1; value=False declined=False fatal=True" and sf.RUNS["f"] == {1}
    before = kit.clock.now_ms()
    delayed = client.start(sf.catches_failures, "l", "app-delay").result(timeout=30)
    assert delayed.startswith("ApplicationError after 4") and sf.RUNS["l"] == {1, 2, 3, 4}
    assert kit.clock.now_ms() - before >= 3 * 500_000  # each retry waited the delay the task asked for


# -- nested combinations -----------------------------------------------------------------------


def test_all_of_these_or_a_deadline_when_all_arrive_first(kit: TestEnvironment) -> None:
    client = kit.client()
    handle = client.start(sf.all_or_deadline, 30.0, id="aod-1")
    kit.run_until_idle()
    client.signal("aod-1", "b", "bee")
    assert handle.result(timeout=30) == ["ax1", "bee"]


def test_all_of_these_or_a_deadline_when_the_deadline_comes_first(kit: TestEnvironment) -> None:
    handle = kit.client().start(sf.all_or_deadline, 30.0, id="aod-2")
    assert handle.result(timeout=30) == "deadline"


def test_any_inside_all(kit: TestEnvironment) -> None:
    client = kit.client()
    handle = client.start(sf.any_inside_all, id="aia")
    kit.run_until_idle()
    client.signal("aia", "q", "queue")
    assert handle.result(timeout=30) == ["queue", "cx1"]
    state = kit.state("aia")
    assert state is not None and state.status == COMPLETED


# -- keyword arguments ------------------------------------------------------------------------


def test_keyword_arguments_to_tasks_and_children(kit: TestEnvironment) -> None:
    result = kit.client().start(sf.keywords, "ann", greeting="hello").result(timeout=30)
    assert result == "k1x1! k2x3 hello ann"


def test_keyword_only_parameters_are_refused_with_the_fix() -> None:
    @pf.task
    def kw_only(a: int, *, b: int) -> int:
        return a + b

    with pytest.raises(pf.DefinitionError, match="keyword-only argument.*make it an ordinary parameter"):
        positional_arguments(kw_only, (1,), {"b": 2}, skip_first=False)


def test_an_update_to_a_blocked_run_is_refused_and_not_recorded(kit: TestEnvironment) -> None:
    sf.BEHAVIOUR["fixable"] = "bug"
    client = kit.client()
    client.start(sf.fixable, id="fix-3")
    kit.advance(11)
    before = kit.state("fix-3")
    with pytest.raises(pf.UpdateFailedError, match="blocked at step 1.*not applied"):
        client.update("fix-3", "anything", 1)
    after = kit.state("fix-3")
    assert before is not None and after is not None and after.arrivals == before.arrivals
