"""Schedules end to end on the test environment; each test also runs with every message twice."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

import pytest

import pulsarflow as pf
from pulsarflow.messages import client as status
from pulsarflow.schedules import Schedules, ScheduleState, scheduler
from pulsarflow.schedules import workflow as scheduler_module
from pulsarflow.testing import TestEnvironment
from tests.e2e import schedule_flows as sf

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)  # the virtual clock's start


@pytest.fixture(params=[False, True], ids=["once", "twice"])
def env(request: pytest.FixtureRequest) -> Iterator[TestEnvironment]:
    sf.STAMPS.clear()
    environment = TestEnvironment(*sf.ALL, duplicate_messages=request.param)
    yield environment
    environment.close()


def advance(env: TestEnvironment, seconds: float) -> None:
    """Move the virtual clock timer by timer, so that each message runs at its own time."""
    target = env.virtual_clock.now_ms() + int(seconds * 1000)
    env.run_ready()
    while (due := env.transport.next_due_ms()) is not None and due <= target:
        env.virtual_clock.sleep_until(due)
        env.run_ready()
    env.virtual_clock.sleep_until(target)
    env.run_ready()


def at(seconds: float) -> str:
    return (T0 + dt.timedelta(seconds=seconds)).isoformat()


def stamps(label: str) -> list[str]:
    """Distinct start times of the runs with ``label`` (a task may run twice when messages are doubled)."""
    return sorted({s.split("@", 1)[1] for s in sf.STAMPS if s.startswith(f"{label}@")})


def test_an_interval_fires_on_time_and_each_run_is_a_child(env: TestEnvironment) -> None:
    schedules = Schedules(env.client())
    assert schedules.create("every-minute", sf.tick, "a", every=60) == "schedule:every-minute"
    advance(env, 5 * 60 + 30)
    assert stamps("a") == [at(60 * i) for i in range(1, 6)]
    state = schedules.describe("every-minute").state
    assert (state.status, state.fired, state.started, state.skipped) == ("ACTIVE", 5, 5, 0)
    assert state.next_fire == T0 + dt.timedelta(minutes=6)
    assert [r.status for r in state.recent] == ["COMPLETED"] * 5
    assert [r.fire_at for r in state.recent] == [T0 + dt.timedelta(minutes=i) for i in range(1, 6)]
    client = env.client()
    for run in state.recent:  # the ids the scheduler reports are the runs' real ids
        assert client.status(run.workflow_id).status == status.COMPLETED
        assert run.started_at is not None
        assert client.get_handle(run.workflow_id).result() == f"a@{run.started_at.isoformat()}"


def test_a_cron_schedule_fires_on_its_minutes_and_not_before_start_at(env: TestEnvironment) -> None:
    schedules = Schedules(env.client())
    schedules.create("quarterly", sf.tick, "q", cron="*/15 * * * *")
    schedules.create("six-hourly", sf.tick, "s", cron="0 */6 * * *", start_at=T0 + dt.timedelta(hours=12))
    advance(env, 24 * 3600 + 60)
    assert stamps("q")[:5] == [at(15 * 60 * i) for i in range(1, 6)]
    assert len(stamps("q")) == 24 * 4
    assert stamps("s") == [at(12 * 3600), at(18 * 3600), at(24 * 3600)]


def test_overlap_skip_drops_fires_while_the_previous_run_runs(env: TestEnvironment) -> None:
    schedules = Schedules(env.client())
    schedules.create("skipper", sf.slow_tick, "k", 130.0, every=60, overlap="skip")
    advance(env, 600)
    assert stamps("k") == [at(60), at(240), at(420)]  # the run started at 600 ends at 730
    state = schedules.describe("skipper").state
    assert (state.fired, state.started, state.skipped) == (10, 4, 6)
    assert [r.fire_at for r in state.running] == [T0 + dt.timedelta(seconds=600)]
    assert [r.fire_at for r in state.recent if r.status == "SKIPPED"] == [
        T0 + dt.timedelta(seconds=s) for s in (120, 180, 300, 360, 480, 540)]


def test_overlap_buffer_one_starts_one_waiting_fire_when_the_previous_run_ends(env: TestEnvironment) -> None:
    schedules = Schedules(env.client())
    schedules.create("buffered", sf.slow_tick, "b", 130.0, every=60, overlap="buffer_one")
    advance(env, 600)
    assert stamps("b") == [at(60), at(190), at(320), at(450)]  # each starts as the previous one ends
    state = schedules.describe("buffered").state
    assert (state.fired, state.started, state.skipped) == (10, 5, 4)
    assert state.buffered == T0 + dt.timedelta(seconds=600)
    [running] = state.running
    assert (running.fire_at, running.started_at) == (T0 + dt.timedelta(seconds=480), T0 + dt.timedelta(seconds=580))
    assert [r.fire_at for r in state.recent if r.status == "COMPLETED"] == [
        T0 + dt.timedelta(seconds=s) for s in (60, 120, 240, 360)]


def test_overlap_allow_all_starts_every_fire(env: TestEnvironment) -> None:
    schedules = Schedules(env.client())
    schedules.create("all", sf.slow_tick, "l", 130.0, every=60, overlap="allow_all")
    advance(env, 600)
    assert stamps("l") == [at(60 * i) for i in range(1, 8)]  # started up to 420, finished by 550
    state = schedules.describe("all").state
    assert (state.fired, state.started, state.skipped) == (10, 10, 0)
    assert [r.fire_at for r in state.running] == [T0 + dt.timedelta(seconds=s) for s in (480, 540, 600)]


def test_pause_resume_and_delete(env: TestEnvironment) -> None:
    schedules = Schedules(env.client())
    schedules.create("ctl", sf.tick, "p", every=60)
    schedules.create("other", sf.tick, "o", every=3600)
    env.run_ready()
    assert schedules.list() == ["ctl", "other"]
    advance(env, 130)
    schedules.pause("ctl")
    schedules.pause("ctl")  # twice is the same as once
    advance(env, 300)
    assert stamps("p") == [at(60), at(120)]
    assert schedules.describe("ctl").state.status == "PAUSED"
    schedules.resume("ctl")  # at 430: the next fire is 480 (counted from the creation), none is made up
    assert schedules.describe("ctl").state.next_fire == T0 + dt.timedelta(seconds=480)
    advance(env, 170)
    assert stamps("p") == [at(60), at(120), at(480), at(540), at(600)]
    schedules.delete("ctl")
    advance(env, 600)
    assert len(stamps("p")) == 5
    final = schedules.describe("ctl")
    assert (final.state.status, final.state.fired) == ("DELETED", 5)
    assert schedules.list() == ["other"]  # paused ones are listed, deleted ones are not
    assert env.client().get_handle("schedule:ctl", scheduler).result().state.status == "DELETED"
    with pytest.raises(pf.WorkflowNotFoundError, match="no schedule 'ctl': it was never created, or it was deleted"):
        schedules.pause("ctl")
    with pytest.raises(pf.ScheduleError, match="was deleted .* choose another name"):
        schedules.create("ctl", sf.tick, "p", every=60)


def test_update_changes_timing_and_arguments_from_now(env: TestEnvironment) -> None:
    schedules = Schedules(env.client())
    schedules.create("upd", sf.tick, "u1", every=60)
    advance(env, 150)
    schedules.update("upd", every=40, args=["u2"])  # at 150: fires at 190, 230, ...
    advance(env, 100)
    schedules.update("upd", cron="0 * * * *")
    advance(env, 3600)
    assert stamps("u1") == [at(60), at(120)]
    assert stamps("u2") == [at(190), at(230), at(3600)]
    spec = schedules.describe("upd").spec
    assert (spec.cron, spec.every_ms, spec.args) == ("0 * * * *", None, ["u2"])


def test_a_failing_run_is_recorded_and_the_schedule_goes_on(env: TestEnvironment) -> None:
    schedules = Schedules(env.client())
    schedules.create("fails", sf.failing_tick, "f", every=60)
    advance(env, 200)
    state = schedules.describe("fails").state
    assert state.status == "ACTIVE" and state.started == 3
    assert [r.status for r in state.recent] == ["FAILED"] * 3
    assert "ApplicationError: f always fails" in state.recent[0].detail


def test_cancelling_the_scheduler_cancels_its_runs_in_flight(env: TestEnvironment) -> None:
    schedules = Schedules(env.client())
    schedules.create("cancel-me", sf.slow_tick, "c", 1000.0, every=60, overlap="allow_all")
    advance(env, 130)
    running = [r.workflow_id for r in schedules.describe("cancel-me").state.running]
    client = env.client()
    client.cancel("schedule:cancel-me", "no more")
    advance(env, 1)
    assert client.status("schedule:cancel-me").status == status.CANCELLED
    assert [client.status(r).status for r in running] == [status.CANCELLED] * 2
    advance(env, 600)
    assert stamps("c") == []


def test_the_history_stays_bounded_by_continuing_as_new(env: TestEnvironment) -> None:
    schedules = Schedules(env.client())
    schedules.create("long", sf.tick, "h", every=60)
    fires = 3 * scheduler_module.FIRES_PER_RUN + 5
    advance(env, fires * 60 + 30)
    assert len(stamps("h")) == fires
    record = env.state("schedule:long")
    assert record is not None and record.runs == 3
    assert len(record.commands) <= 3 * 5 + 2  # this run's 5 fires: timer, child (and a control wait)
    state = schedules.describe("long").state
    assert (state.fired, state.started, state.runs) == (fires, fires, 3)
    assert all(r.workflow_id.startswith("schedule:long/r3/") for r in state.recent[-5:])
    assert env.client().status(state.recent[-1].workflow_id).status == status.COMPLETED


def test_runs_still_going_when_it_continues_as_new_are_listed_as_detached(env: TestEnvironment) -> None:
    schedules = Schedules(env.client())
    schedules.create("busy", sf.slow_tick, "d", 90.0, every=60, overlap="allow_all")
    advance(env, scheduler_module.FIRES_PER_RUN * 60 + 1)
    state = schedules.describe("busy").state
    assert state.runs == 1 and state.running == []
    # at the 20th fire the runs started at the 19th and 20th fires were still going
    assert [r.status for r in state.recent[-3:]] == ["COMPLETED", "DETACHED", "DETACHED"]
    assert state.recent[-1].fire_at == T0 + dt.timedelta(minutes=scheduler_module.FIRES_PER_RUN)
    advance(env, 90)
    assert env.client().status(state.recent[-1].workflow_id).status == status.COMPLETED


def test_a_schedule_survives_a_restart(env: TestEnvironment) -> None:
    schedules = Schedules(env.client())
    schedules.create("durable", sf.tick, "r", every=60)
    advance(env, 150)
    # The process stops: a new one starts over the same store, and the broker (here: the pending
    # messages of the old transport, e.g. the scheduler's timer) outlives the process.
    restarted = TestEnvironment(*sf.ALL, store=env.store, duplicate_messages=env.transport.duplicate)
    restarted.virtual_clock.sleep_until(env.virtual_clock.now_ms())
    while (due := env.transport.next_due_ms()) is not None:
        env.virtual_clock.sleep_until(due)
        while (delivery := env.transport.poll()) is not None:
            restarted.transport.send(delivery.topic, delivery.key, delivery.payload, due)
    advance(restarted, 200)
    assert stamps("r") == [at(60), at(120), at(180), at(240), at(300)]
    state = Schedules(restarted.client()).describe("durable").state
    assert (state.fired, state.started) == (5, 5)
    restarted.close()


def test_create_is_idempotent_and_bad_input_is_explained(env: TestEnvironment) -> None:
    schedules = Schedules(env.client())
    schedules.create("same", sf.tick, "x", every=60)
    schedules.create("same", sf.tick, "x", every=60)  # the same spec: nothing new
    advance(env, 61)
    assert stamps("x") == [at(60)]
    with pytest.raises(pf.ScheduleError, match="exists with a different spec; change it with update"):
        schedules.create("same", sf.tick, "y", every=60)
    with pytest.raises(pf.ScheduleError, match="needs exactly one of cron="):
        schedules.create("none", sf.tick, "x")
    with pytest.raises(pf.ScheduleError, match="needs exactly one of cron="):
        schedules.create("both", sf.tick, "x", cron="* * * * *", every=60)
    with pytest.raises(pf.ScheduleError, match="overlap='queue' is not a policy; use one of 'skip'"):
        schedules.create("bad", sf.tick, "x", every=60, overlap="queue")
    with pytest.raises(pf.ScheduleError, match="hour field '25': 25 is out of range 0-23"):
        schedules.create("bad", sf.tick, "x", cron="0 25 * * *")
    with pytest.raises(pf.ScheduleError, match="every=0.5s is too short"):
        schedules.create("bad", sf.tick, "x", every=0.5)
    with pytest.raises(pf.ScheduleError, match="start_at must be a timezone-aware datetime"):
        schedules.create("bad", sf.tick, "x", every=60, start_at=dt.datetime(2030, 1, 1))
    with pytest.raises(pf.ScheduleError, match="arguments of schedule 'bad' cannot be serialized"):
        schedules.create("bad", sf.tick, object(), every=60)
    with pytest.raises(pf.DefinitionError, match="unknown workflow 'nope'"):
        schedules.create("bad", "nope", every=60)
    with pytest.raises(pf.ScheduleError, match="nothing to update in schedule 'same'"):
        schedules.update("same")
    with pytest.raises(pf.WorkflowNotFoundError, match="no schedule 'ghost': create it first"):
        schedules.describe("ghost")
    without = TestEnvironment(sf.tick, sf.stamp)
    with pytest.raises(pf.ScheduleError, match="scheduler workflow is not registered"):
        Schedules(without.client()).create("x", sf.tick, "x", every=60)


def test_describe_reads_without_changing_the_history(env: TestEnvironment) -> None:
    schedules = Schedules(env.client())
    schedules.create("quiet", sf.tick, "z", every=60)
    advance(env, 61)
    before = env.state("schedule:quiet")
    assert isinstance(schedules.describe("quiet").state, ScheduleState)
    assert env.state("schedule:quiet") == before


def test_the_nightly_example_prints_its_reports(capsys: pytest.CaptureFixture[str]) -> None:
    from examples import nightly

    nightly.PUBLISHED.clear()
    nightly.main()
    printed = capsys.readouterr().out
    assert "03:00 UTC" in printed.splitlines()[0]
    reports = printed.count(": posted to #emea-sales: sales of emea on ")
    assert reports >= 3  # a fourth may start on a slow machine before the switch back to the cron
    started = re.search(r"back on its cron, paused: (\d+) reports so far", printed)
    assert started is not None and int(started.group(1)) >= reports and "deleted: DELETED" in printed
