"""Schedules with the engines deployed as Pulsar Functions on a real standalone.

An every-2-seconds schedule really fires, goes on after its workflow engine's process is
killed (its state is in function state, its timer a delayed message in the broker), and
then pauses, resumes and is deleted.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

import pytest

from pulsarflow.messages import client as status
from pulsarflow.schedules import Schedules, ScheduleState, schedule_id
from tests.e2e import schedule_flows
from tests.integration.conftest import connected
from tests.integration.test_faults import kill_and_await_restart

pytestmark = pytest.mark.pulsar
TIMEOUT = 90
PERIOD = 2


@pytest.fixture(scope="module")
def client(deployment):  # type: ignore[no-untyped-def]
    manifest, _, _ = deployment
    with connected(manifest.topics, ("tests.e2e.schedule_flows",)) as connection:
        yield connection


def eventually(check: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {timeout}s")
        time.sleep(0.5)
    return value


def completed_runs(state: ScheduleState) -> list[Any]:
    return [r for r in state.recent if r.status == "COMPLETED"]


def check_runs(client: Any, state: ScheduleState) -> None:
    """Every run the scheduler reports really ran once, on a fire time of the 2-second grid."""
    fires = [r.fire_at for r in [*state.recent, *state.running] if r.status != "SKIPPED"]
    assert len(set(fires)) == len(fires), f"a fire time started two runs: {fires}"
    for run in completed_runs(state):
        assert (run.fire_at - state.anchor) % dt.timedelta(seconds=PERIOD) == dt.timedelta(0)
        assert run.started_at is not None and run.started_at >= run.fire_at
        label, _, began = client.get_handle(run.workflow_id).result(timeout=TIMEOUT).partition("@")
        assert label == "it" and dt.datetime.fromisoformat(began) >= run.started_at  # the run's own start


def test_an_every_2_seconds_schedule_fires_survives_a_crash_pauses_and_is_deleted(  # type: ignore[no-untyped-def]
        client, deployment) -> None:
    manifest, _, _ = deployment
    schedules = Schedules(client, timeout=TIMEOUT)
    name = f"it-{time.time_ns()}"
    schedules.create(name, schedule_flows.tick, "it", every=PERIOD)

    def state_when(condition: Callable[[ScheduleState], bool]) -> Callable[[], ScheduleState | None]:
        def check() -> ScheduleState | None:
            state = schedules.describe(name).state
            return state if condition(state) else None
        return check

    first = eventually(state_when(lambda s: len(completed_runs(s)) >= 2), "two runs of the schedule")
    check_runs(client, first)

    kill_and_await_restart(manifest.functions[0].name)  # the workflow engine's process
    after_crash = eventually(state_when(lambda s: len(completed_runs(s)) >= len(completed_runs(first)) + 2),
                             "two more runs after the workflow engine was killed", timeout=TIMEOUT)
    check_runs(client, after_crash)

    schedules.pause(name)
    paused = schedules.describe(name).state
    time.sleep(3 * PERIOD)  # fires would have come by now
    still = schedules.describe(name).state
    assert (still.status, still.started) == ("PAUSED", paused.started)

    schedules.resume(name)
    eventually(lambda: schedules.describe(name).state.started > paused.started, "a run after resume")
    schedules.delete(name)
    eventually(lambda: client.status(schedule_id(name)).status == status.COMPLETED, "the schedule's end")
    assert schedules.describe(name).state.status == "DELETED"
