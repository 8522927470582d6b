"""Workflows for the semantics that users rely on: signals and abandoned waits, closing a run,
blocked runs, matching failures, nested combinations and keyword arguments."""

from __future__ import annotations

import pulsarflow as pf

RUNS: dict[str, set[int]] = {}  # task label -> attempt numbers run (a duplicate delivery runs one twice)
BEHAVIOUR: dict[str, str] = {}  # switches read by tasks and by the "fixable" workflow


def _count(label: str) -> int:
    attempt = pf.task_info().attempt
    RUNS.setdefault(label, set()).add(attempt)
    return attempt


@pf.task(retry=pf.RetryPolicy(max_attempts=5, initial_delay=3600, jitter=0))
def fails_once_then_slow_retry(label: str) -> str:
    if _count(label) == 1:
        raise RuntimeError("first attempt fails")
    return "retried"


@pf.task
def quick(label: str, times: int = 1, suffix: str = "") -> str:
    _count(label)
    return f"{label}x{times}{suffix}"


class PaymentDeclined(ValueError):
    pass


@pf.task(retry=pf.RetryPolicy(max_attempts=4, initial_delay=1, jitter=0, non_retryable=[ValueError]))
def raises(label: str, kind: str) -> str:
    _count(label)
    if kind == "unicode":
        b"\xff".decode("utf-8")  # UnicodeDecodeError, a subclass of ValueError
    if kind == "declined":
        raise PaymentDeclined("card declined")
    if kind == "app-final":
        raise pf.ApplicationError("stop now", type="Fatal", non_retryable=True)
    if kind == "app-delay":
        raise pf.ApplicationError("later", next_retry_delay=500)
    raise KeyError(kind)


@pf.workflow
async def heartbeat_loop(ctx: pf.WorkflowContext, wanted: int) -> list[str]:
    """Wait for messages, with a heartbeat every minute: the usual pattern."""
    got: list[str] = []
    beats = 0
    while len(got) < wanted:
        race = ctx.any(ctx.sleep(60), ctx.wait_signal("msg"))
        value = await race
        if race.index == 0:
            beats += 1
        else:
            got.append(value)
    return got


@pf.workflow
async def any_then_wait(ctx: pf.WorkflowContext) -> str:
    first = await ctx.any(ctx.sleep(5), ctx.wait_signal("x"))
    second = await ctx.wait_signal("x", timeout=3600)
    return f"{first}/{second}"


@pf.workflow
async def loser_is_retrying(ctx: pf.WorkflowContext, label: str) -> str:
    return str(await ctx.any(ctx.task(fails_once_then_slow_retry, label), ctx.sleep(10)))


@pf.workflow
async def child_sleeps(ctx: pf.WorkflowContext, label: str) -> str:
    await ctx.sleep(100)
    return await ctx.task(quick, label)


@pf.workflow
async def leaves_children(ctx: pf.WorkflowContext, abandon: bool) -> str:
    ctx.child(child_sleeps, "left", abandon=abandon)
    await ctx.sleep(1)
    return "parent done"


@pf.workflow
async def cancels_a_loser(ctx: pf.WorkflowContext, label: str) -> str:
    slow = ctx.task(fails_once_then_slow_retry, label)
    winner = await ctx.any(slow, ctx.sleep(10), cancel_losers=True)
    try:
        await slow
    except pf.StepCancelledError:
        return f"{winner} then cancelled"
    return "not cancelled"


@pf.workflow
async def fixable(ctx: pf.WorkflowContext) -> str:
    await ctx.sleep(10)
    if BEHAVIOUR.get("fixable") == "bug":
        raise KeyError("a bug in the workflow code")
    return "fixed"


@pf.workflow
async def catches_failures(ctx: pf.WorkflowContext, label: str, kind: str) -> str:
    try:
        return await ctx.task(raises, label, kind)
    except pf.TaskFailedError as err:
        return (f"{err.error.type} after {err.attempts}; value={err.matches(ValueError)} "
                f"declined={err.matches(PaymentDeclined)} fatal={err.matches('Fatal')}")


@pf.workflow(failure_exceptions=(LookupError,))
async def fails_on_lookup(ctx: pf.WorkflowContext) -> str:
    await ctx.sleep(1)
    raise KeyError("missing")


@pf.workflow
async def all_or_deadline(ctx: pf.WorkflowContext, deadline: float) -> object:
    both = ctx.all(ctx.task(quick, "a"), ctx.wait_signal("b"))
    race = ctx.any(both, ctx.sleep(deadline))
    value = await race
    return value if race.index == 0 else "deadline"


@pf.workflow
async def any_inside_all(ctx: pf.WorkflowContext) -> object:
    return await ctx.all(ctx.any(ctx.wait_signal("p"), ctx.wait_signal("q")), ctx.task(quick, "c"))


@pf.workflow
async def keywords(ctx: pf.WorkflowContext, who: str, greeting: str = "hi") -> str:
    one = await ctx.task(quick, "k1", suffix="!")
    two = await ctx.task(quick, label="k2", times=3)
    child = await ctx.child(kw_child, greeting=greeting, who=who)
    return f"{one} {two} {child}"


@pf.workflow
async def kw_child(ctx: pf.WorkflowContext, who: str, greeting: str) -> str:
    return f"{greeting} {who}"


ALL = [fails_once_then_slow_retry, quick, raises, heartbeat_loop, any_then_wait, loser_is_retrying, child_sleeps,
       leaves_children, cancels_a_loser, fixable, catches_failures, fails_on_lookup, all_or_deadline,
       any_inside_all, keywords, kw_child]
