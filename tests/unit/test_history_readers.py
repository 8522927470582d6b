"""Tools that read states beside the engine see the whole history, its sealed chunks joined."""

from __future__ import annotations

import pulsarflow as pf
from pulsarflow.deploy.running import ListedIndex, collect
from pulsarflow.messages import WorkflowState
from pulsarflow.runtime.history import CHUNK_ENTRIES
from pulsarflow.testing import TestEnvironment

STEPS = 3 * CHUNK_ENTRIES  # more than a head holds: most of the history is in chunks


@pf.task
def one(i: int) -> int:
    return i


@pf.workflow
async def long_then_wait(ctx: pf.WorkflowContext) -> int:
    total = sum([await ctx.task(one, i) for i in range(STEPS)])
    await ctx.wait_signal("go")
    return total


def test_the_testkit_and_the_live_gate_read_the_whole_history_of_a_long_run() -> None:
    env = TestEnvironment(one, long_then_wait)
    try:
        handle = env.client().start(long_then_wait, id="long-1")
        env.run_until_idle()
        stored = env.store.get("long-1")
        assert stored is not None
        head = env.codec.decode(WorkflowState, stored.value)
        assert len(head.commands) + len(head.arrivals) < CHUNK_ENTRIES  # the stored head holds only the tail
        state = env.state("long-1")
        assert state is not None and len(state.commands) >= STEPS and len(state.arrivals) >= STEPS
        runs = collect(ListedIndex(("long-1",)), env.store)  # type: ignore[arg-type]
        [collected] = runs.states
        assert collected.commands == state.commands and collected.arrivals == state.arrivals
        assert runs.unreadable == []
        env.client().signal("long-1", "go")
        assert handle.result(timeout=60) == sum(range(STEPS))
    finally:
        env.close()
