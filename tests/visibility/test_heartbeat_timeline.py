"""The details a failed attempt last heartbeated reach the timeline (TaskRetried carries them)."""

from __future__ import annotations

from typing import Any

import pulsarflow as pf
from pulsarflow.events.memory import InMemoryEventStore
from pulsarflow.testing import TestEnvironment
from pulsarflow.visibility.feed import follow
from pulsarflow.visibility.memory import InMemoryVisibilityStore
from pulsarflow.visibility.service import VisibilityService


@pf.task(service="uploads", retry=pf.RetryPolicy(max_attempts=3, initial_delay=1.0))
def upload(parts: int) -> int:
    info = pf.task_info()
    done = info.heartbeat_details or 0
    if info.attempt < 3:
        pf.heartbeat(done + 2)  # two more parts uploaded, then the attempt fails
        raise ConnectionError(f"lost the connection after part {done + 2}")
    return parts


@pf.workflow
async def uploading(ctx: pf.WorkflowContext, parts: int) -> int:
    return await ctx.task(upload, parts)


def test_each_failed_attempts_last_heartbeat_is_on_the_timeline() -> None:
    env = TestEnvironment(upload, uploading)
    try:
        store = InMemoryVisibilityStore()
        assert isinstance(env.events, InMemoryEventStore)
        follow(env.events, store)
        service = VisibilityService(store, env.client())
        assert env.client().start(uploading, 10, id="up-1").result() == 10
        detail: dict[str, Any] = service.show("up-1")
    finally:
        env.close()
    (step,) = [s for s in detail["steps"] if s["kind"] == "task"]
    beats = [(a["number"], a["heartbeat"]) for a in step["attempts"]]
    assert beats == [(1, 2), (2, 4), (3, None)], beats
