"""The test environment's clock and waits: what ``advance``, ``run_until_idle``, ``advance_until_idle``
and ``result(timeout=...)`` do on the virtual clock, and what the client says when a wait or a
signal gets nowhere. Each test runs with single, doubled and batched delivery (see conftest.py)."""

from __future__ import annotations

import datetime as dt

import pytest

import pulsarflow as pf
from pulsarflow.schedules import Schedules, scheduler
from pulsarflow.testing import TestEnvironment

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)  # the virtual clock's start
TICKS: list[str] = []


@pf.task
def note(label: str) -> str:
    TICKS.append(label)
    return label


@pf.workflow
async def hourly_note(ctx: pf.WorkflowContext, label: str) -> str:
    return await ctx.task(note, f"{label}@{ctx.now().isoformat()}")


@pf.workflow
async def naps(ctx: pf.WorkflowContext, *seconds: float) -> list[str]:
    """The time at its start and after each sleep."""
    times = [ctx.now().isoformat()]
    for s in seconds:
        await ctx.sleep(s)
        times.append(ctx.now().isoformat())
    return times


@pf.workflow
async def awaits_go(ctx: pf.WorkflowContext) -> str:
    return str(await ctx.wait_signal("go"))


@pf.task(retry=pf.RetryPolicy(max_attempts=1))
def refuse(fail: bool) -> str:
    if fail:
        raise RuntimeError("told to fail")
    return "done"


@pf.workflow
async def ends_at_once(ctx: pf.WorkflowContext, fail: bool) -> str:
    return await ctx.task(refuse, fail)


FLOWS = [note, hourly_note, naps, awaits_go, refuse, ends_at_once, scheduler]


@pytest.fixture
def kit(env: TestEnvironment) -> TestEnvironment:
    TICKS.clear()
    env.register(*FLOWS)
    return env


def at(seconds: float) -> str:
    return (T0 + dt.timedelta(seconds=seconds)).isoformat()


def clock_s(env: TestEnvironment) -> float:
    """Virtual seconds since the start."""
    return env.virtual_clock.now_ms() / 1000 - T0.timestamp()


# -- result(timeout=...) is a wall-clock guard ------------------------------------------------


def test_result_timeout_counts_real_seconds_while_the_virtual_clock_skips(kit: TestEnvironment) -> None:
    handle = kit.client().start(naps, 60.0, 30 * 86400.0)
    assert handle.result(timeout=10) == [at(0), at(60), at(60 + 30 * 86400)]


def test_a_result_that_never_comes_while_timers_keep_firing_stops_at_the_real_timeout(kit: TestEnvironment) -> None:
    client = kit.client()
    Schedules(client).create("hourly", hourly_note, "h", every=3600)  # its timers never run out
    handle = client.start(awaits_go, id="waits-1")
    with pytest.raises(pf.ResultTimeoutError) as info:
        handle.result(timeout=0.3)
    message = str(info.value)
    assert "no answer about workflow 'waits-1' within 0.3s of real time" in message
    assert "the virtual clock moved" in message and "timers kept firing" in message
    assert len(TICKS) > 1  # the schedule's hourly runs did happen meanwhile


# -- what a wait that gives up says -------------------------------------------------------------


def test_a_result_without_timeout_that_nothing_can_bring_says_why_not_none(kit: TestEnvironment) -> None:
    handle = kit.client().start(awaits_go, id="stuck-1")
    with pytest.raises(pf.ResultTimeoutError) as info:
        handle.result()
    message = str(info.value)
    assert "None" not in message
    assert message.startswith("no answer about workflow 'stuck-1': gave up ")
    assert "nothing is left to run in this process" in message and "a signal or an update" in message


def test_a_wait_that_gives_up_early_does_not_claim_its_full_timeout(kit: TestEnvironment) -> None:
    handle = kit.client().start(awaits_go, id="stuck-2")
    with pytest.raises(pf.ResultTimeoutError) as info:
        handle.result(timeout=3600)
    message = str(info.value)
    assert "within 3600s" not in message
    assert ": gave up " in message and ", before its 3600s timeout, because" in message
    assert "nothing is left to run in this process" in message


def test_the_embedded_runtime_on_a_real_clock_says_when_it_gives_up_early() -> None:
    env = pf.EmbeddedEnvironment(*FLOWS)
    with pytest.raises(pf.ResultTimeoutError) as info:
        env.client().start(awaits_go, id="stuck-3").result(timeout=3600)
    message = str(info.value)
    assert "within 3600s" not in message and ", before its 3600s timeout, because nothing is left" in message
    env.close()


def test_the_embedded_runtime_on_a_real_clock_names_its_timeout() -> None:
    env = pf.EmbeddedEnvironment(*FLOWS)
    with pytest.raises(pf.ResultTimeoutError) as info:
        env.client().start(naps, 3600.0, id="long-1").result(timeout=0.2)
    assert str(info.value).startswith("no answer about workflow 'long-1' within 0.2s: the workflow is still waiting")
    env.close()


# -- run_until_idle / advance_until_idle ----------------------------------------------------------


def test_run_until_idle_returns_while_a_schedule_exists_and_leaves_the_clock_alone(kit: TestEnvironment) -> None:
    Schedules(kit.client()).create("hourly", hourly_note, "h", every=3600)
    handled = kit.run_until_idle(max_messages=5_000)  # before: it skipped ahead from fire to fire
    assert 0 < handled < 5_000 and clock_s(kit) == 0 and TICKS == []
    assert kit.run_until_idle() == 0  # nothing is due now


def test_advance_until_idle_stops_when_nothing_is_left(kit: TestEnvironment) -> None:
    handle = kit.client().start(naps, 60.0, 60.0)
    assert kit.advance_until_idle(max_seconds=86400) > 0
    assert handle.done() and clock_s(kit) == 120  # the clock stops at the last timer, not at the bound
    assert handle.result() == [at(0), at(60), at(120)]


def test_advance_until_idle_is_bounded_and_fires_each_timer_at_its_time(kit: TestEnvironment) -> None:
    Schedules(kit.client()).create("hourly", hourly_note, "h", every=3600)
    kit.advance_until_idle(max_seconds=3 * 3600 + 10)
    assert clock_s(kit) == 3 * 3600 + 10  # timers remain (the next fire): the clock is at the bound
    assert sorted(set(TICKS)) == [f"h@{at(3600 * i)}" for i in (1, 2, 3)]


def test_advance_until_idle_refuses_a_negative_bound(kit: TestEnvironment) -> None:
    with pytest.raises(ValueError, match="max_seconds must be at least 0, got -1"):
        kit.advance_until_idle(max_seconds=-1)


# -- advance(): queued work first, then timers in order ----------------------------------------


def test_advance_runs_queued_work_at_the_current_time_before_moving_the_clock(kit: TestEnvironment) -> None:
    handle = kit.client().start(naps, 30.0)  # queued, not handled yet
    kit.advance(61)
    assert handle.done()  # before: it started at +61 s, so its 30 s sleep was still pending
    assert handle.result() == [at(0), at(30)]
    assert clock_s(kit) == 61


def test_advance_fires_the_timers_in_between_at_their_own_times_in_order(kit: TestEnvironment) -> None:
    handle = kit.client().start(naps, 10.0, 20.0, 25.0)
    kit.run_ready()
    kit.advance(3600)
    assert handle.done() and handle.result() == [at(0), at(10), at(30), at(55)]
    assert clock_s(kit) == 3600


def test_advance_refuses_to_go_back(kit: TestEnvironment) -> None:
    with pytest.raises(ValueError, match="advance\\(\\) moves time forward: got -5 seconds"):
        kit.advance(-5)


# -- a signal to a finished workflow ---------------------------------------------------------------


def test_a_signal_to_a_completed_workflow_says_it_finished_and_what_to_do(kit: TestEnvironment) -> None:
    client = kit.client()
    assert client.start(ends_at_once, False, id="over-1").result() == "done"
    with pytest.raises(pf.WorkflowNotFoundError) as info:
        client.signal("over-1", "go", 1)
    message = str(info.value)
    assert "start the workflow first" not in message
    assert "workflow 'over-1' has finished (COMPLETED), so signal 'go' was not delivered" in message
    assert "start a new run" in message


def test_a_signal_to_a_failed_workflow_points_to_retry(kit: TestEnvironment) -> None:
    client = kit.client()
    with pytest.raises(pf.WorkflowFailedError):
        client.start(ends_at_once, True, id="over-2").result()
    with pytest.raises(pf.WorkflowNotFoundError) as info:
        client.signal("over-2", "go")
    message = str(info.value)
    assert "workflow 'over-2' has finished (FAILED), so signal 'go' was not delivered" in message
    assert "client.retry('over-2')" in message


def test_a_signal_to_a_cancelled_workflow_says_so(kit: TestEnvironment) -> None:
    client = kit.client()
    handle = client.start(awaits_go, id="over-3")
    kit.run_until_idle()
    client.cancel("over-3")
    with pytest.raises(pf.WorkflowCancelledError):
        handle.result()
    with pytest.raises(pf.WorkflowNotFoundError, match="workflow 'over-3' has finished \\(CANCELLED\\)"):
        client.signal("over-3", "go")


def test_a_signal_to_an_unknown_workflow_still_says_to_check_the_id(kit: TestEnvironment) -> None:
    with pytest.raises(pf.WorkflowNotFoundError) as info:
        kit.client().signal("ghost", "go")
    assert str(info.value) == ("no running workflow 'ghost' to receive signal 'go': none has this id; check the id, "
                               "or start the workflow first")
