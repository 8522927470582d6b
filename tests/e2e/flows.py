"""Tasks and workflows used by the end-to-end tests."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from pathlib import Path

import pulsarflow as pf

CALLS: list[str] = []
FLAKY: dict[str, int] = {}


@dataclass
class Point:
    x: int
    y: int


@pf.task
def add(a: int, b: int) -> int:
    CALLS.append(f"add {a} {b}")
    return a + b


@pf.task(service="geometry")
async def shift(p: Point, dx: int) -> Point:
    return Point(p.x + dx, p.y)


@pf.task(retry=pf.RetryPolicy(max_attempts=4, initial_delay=1.0, max_delay=2.0, jitter=0.0))
def flaky(key: str, failures: int) -> str:
    FLAKY[key] = FLAKY.get(key, 0) + 1
    if FLAKY[key] <= failures:
        raise ConnectionError(f"attempt {FLAKY[key]} of {key} failed")
    return f"{key} ok after {FLAKY[key]}"


@pf.task(retry=pf.RetryPolicy(max_attempts=5, non_retryable=[KeyError]))
def picky(key: str) -> str:
    FLAKY[key] = FLAKY.get(key, 0) + 1
    raise KeyError(key)


@pf.task(retry=pf.RetryPolicy(max_attempts=2, initial_delay=0.01), timeout=0.05)
def slow(seconds: float) -> str:
    import time

    time.sleep(seconds)
    return "done"


@pf.workflow
async def sequence(ctx: pf.WorkflowContext, n: int) -> int:
    total = 0
    for i in range(n):
        total = await ctx.task(add, total, i)
    return total


@pf.workflow
async def fan(ctx: pf.WorkflowContext, n: int) -> list[int]:
    return await ctx.all(*[ctx.task(add, i, i) for i in range(n)])


@pf.workflow
async def race(ctx: pf.WorkflowContext) -> str:
    fast = ctx.sleep(10)
    slow_timer = ctx.sleep(1000)
    await ctx.any(slow_timer, fast)
    return "fast" if fast.done and not slow_timer.done else "slow"


@pf.workflow
async def points(ctx: pf.WorkflowContext, p: Point) -> Point:
    return await ctx.task(shift, p, 5)


@pf.workflow
async def parent(ctx: pf.WorkflowContext, n: int) -> dict[str, int]:
    a = await ctx.child(sequence, n)
    b, c = await ctx.all(ctx.child(sequence, n + 1), ctx.child(sequence, n + 2))
    return {"a": a, "b": b, "c": c}


@pf.workflow
async def sleeper(ctx: pf.WorkflowContext, days: int) -> str:
    start = ctx.now()
    await ctx.sleep(dt.timedelta(days=days))
    middle = ctx.now()
    await ctx.sleep_until(middle + dt.timedelta(hours=1))
    return f"{(middle - start).days} days then {(ctx.now() - middle).seconds} s"


@pf.workflow
async def approval(ctx: pf.WorkflowContext, timeout_s: float) -> str:
    try:
        data = await ctx.wait_signal("decision", timeout=timeout_s)
    except pf.SignalTimeoutError:
        return "timed out"
    return f"got {data}"


@pf.workflow
async def two_signals(ctx: pf.WorkflowContext) -> list[str]:
    first = await ctx.wait_signal("item")
    second = await ctx.wait_signal("item")
    return [first, second]


@pf.workflow
async def determinism(ctx: pf.WorkflowContext) -> list[object]:
    once = await ctx.side_effect(lambda: f"effect-{len(CALLS)}")
    CALLS.append("side-effect-replayed")
    u1, u2 = ctx.uuid4(), ctx.uuid4()
    r = ctx.random().random()
    await ctx.sleep(1)
    return [once, str(u1), str(u2), r, ctx.now().isoformat()]


@pf.workflow
async def retrying(ctx: pf.WorkflowContext, key: str, failures: int) -> str:
    return await ctx.task(flaky, key, failures)


@pf.workflow
async def non_retryable(ctx: pf.WorkflowContext, key: str) -> str:
    return await ctx.task(picky, key)


@pf.workflow
async def timing_out(ctx: pf.WorkflowContext, seconds: float) -> str:
    return await ctx.task(slow, seconds)


@pf.workflow
async def overall_timeout(ctx: pf.WorkflowContext) -> str:
    try:
        return await ctx.task(flaky, "overall", 10, overall_timeout=2.5)
    except pf.TaskTimeoutError as exc:
        return f"gave up: {exc}"


@pf.workflow(timeout=60)
async def too_long(ctx: pf.WorkflowContext) -> str:
    await ctx.sleep(3600)
    return "never"


@pf.workflow
async def catches(ctx: pf.WorkflowContext, key: str) -> str:
    try:
        await ctx.task(picky, key)
    except pf.TaskFailedError as exc:
        return f"caught {exc.error.type} from {exc.task_name} after {exc.attempts}"
    return "no error"


@pf.workflow
async def child_fails(ctx: pf.WorkflowContext, key: str) -> str:
    return await ctx.child(non_retryable, key)


@pf.workflow
async def uses_wall_clock(ctx: pf.WorkflowContext) -> float:
    import time

    try:
        return time.time()
    except pf.SandboxViolationError:
        return -1.0  # swallowing it must not help: the workflow still fails


@pf.workflow
async def uses_asyncio(ctx: pf.WorkflowContext) -> None:
    import asyncio

    await asyncio.sleep(1)


@pf.workflow
async def nap(ctx: pf.WorkflowContext, seconds: float) -> float:
    start = ctx.now()
    await ctx.sleep(seconds)
    return (ctx.now() - start).total_seconds()


# -- lifecycle: cancel and retry (files, not globals, so they also work across processes) --------


@pf.task
def release(item: str) -> str:
    CALLS.append(f"release {item}")
    return f"released {item}"


@pf.task(retry=pf.RetryPolicy(max_attempts=20, initial_delay=5.0, backoff_coefficient=1.0, jitter=0.0))
def stubborn(key: str) -> str:
    FLAKY[key] = FLAKY.get(key, 0) + 1
    raise ConnectionError(f"{key} is still down")


@pf.task
def watchful(marker: str, seconds: float) -> str:
    """Runs up to ``seconds``, stopping early once cancelled; the marker file says which happened."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if pf.task_info().cancelled:
            Path(marker).write_text("cancelled")
            return "stopped"
        time.sleep(0.05)
    Path(marker).write_text("finished")
    return "finished"


@pf.task(retry=pf.RetryPolicy(max_attempts=1))
def fragile(flag: str) -> str:
    """Fails until the file ``flag`` exists (the operator's fix), then returns its content."""
    FLAKY[flag] = FLAKY.get(flag, 0) + 1
    if not Path(flag).exists():
        raise RuntimeError(f"{flag} is missing")
    return Path(flag).read_text()


@pf.workflow
async def holds(ctx: pf.WorkflowContext, item: str, key: str) -> str:
    """Waits on a child and a task that keeps failing; when cancelled, releases and returns."""
    try:
        await ctx.all(ctx.child(approval, 3600.0), ctx.task(stubborn, key))
    except pf.WorkflowCancelledError:
        return await ctx.task(release, item)
    return "not cancelled"


@pf.workflow
async def holds_strictly(ctx: pf.WorkflowContext, item: str) -> str:
    """Cleans up when cancelled, then lets the cancellation end it."""
    try:
        await ctx.wait_signal("never")
    except pf.WorkflowCancelledError:
        await ctx.task(release, item)
        raise
    return "not cancelled"


@pf.workflow
async def watching(ctx: pf.WorkflowContext, marker: str, seconds: float) -> str:
    return await ctx.task(watchful, marker, seconds)


@pf.workflow
async def resumable(ctx: pf.WorkflowContext, flag: str) -> list[object]:
    first = await ctx.task(add, 1, 2)
    return [first, await ctx.task(fragile, flag)]


@pf.workflow
async def resumable_pair(ctx: pf.WorkflowContext, flag_a: str, flag_b: str) -> list[str]:
    await ctx.sleep(1)
    return await ctx.all(ctx.task(fragile, flag_a), ctx.task(fragile, flag_b))


@pf.workflow
async def summer(ctx: pf.WorkflowContext, remaining: int, total: int) -> int:
    """Adds 1..n in batches of 5 tasks, continuing as new after each batch (bounded history)."""
    for _ in range(min(5, remaining)):
        total = await ctx.task(add, total, remaining)
        remaining -= 1
    if remaining:
        ctx.continue_as_new(remaining, total)
    return total


@pf.workflow
async def looping_children(ctx: pf.WorkflowContext, rounds: int, seen: list[int]) -> list[int]:
    """Each run starts a child at the same position; every run must get its own child."""
    seen = [*seen, await ctx.child(sequence, rounds)]
    if rounds > 1:
        ctx.continue_as_new(rounds - 1, seen)
    return seen


@pf.workflow
async def mailbox(ctx: pf.WorkflowContext, read: list[str]) -> list[str]:
    """Reads one signal per run; signals sent meanwhile wait for the next run."""
    read = [*read, await ctx.wait_signal("mail")]
    if len(read) < 3:
        ctx.continue_as_new(read)
    return read


@pf.workflow
async def progress(ctx: pf.WorkflowContext, n: int) -> int:
    """Declares queries: how far it got, and a lookup by name."""
    done: list[int] = []
    ctx.on_query("done", lambda: len(done))
    ctx.on_query("item", lambda i: done[i])
    for i in range(n):
        done.append(await ctx.task(add, i, 100))
        if i == 1:
            await ctx.wait_signal("continue")
    return len(done)


@pf.workflow
async def inbox(ctx: pf.WorkflowContext, owner: str) -> str:
    """Waits for one message (a signal), or is cancelled."""
    return f"{owner} got {await ctx.wait_signal('message')}"


@pf.workflow
async def cart(ctx: pf.WorkflowContext, owner: str) -> list[str]:
    """Items are added by updates (each answered with the new count) until the checkout signal."""
    items: list[str] = []

    def add_item(item: str) -> int:
        if not item:
            raise ValueError("an item needs a name")
        items.append(item)
        return len(items)

    ctx.on_update("add", add_item)
    ctx.on_query("items", lambda: list(items))
    await ctx.wait_signal("checkout")
    total = await ctx.task(add, len(items), 0)
    return [*items, f"{owner}: {total}"]


ALL = [add, shift, flaky, picky, slow, sequence, fan, race, points, parent, sleeper, approval, two_signals,
       determinism, retrying, non_retryable, timing_out, overall_timeout, too_long, catches, child_fails,
       uses_wall_clock, uses_asyncio, nap, release, stubborn, watchful, fragile, holds, holds_strictly, watching,
       resumable, resumable_pair, summer, looping_children, mailbox,
       progress, inbox, cart]
