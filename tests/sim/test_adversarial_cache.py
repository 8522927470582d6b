"""The workflow cache attacked: a cached engine and one that replays every message must decide the same.

Hypothesis drives two ``WorkflowEngine`` instances (cache on, cache off) with one sequence of messages
and compares every decision (state, messages, errors; tracebacks aside, whose outer frames differ by
construction). The sequence is hostile: any pending message may be delivered next (out of order),
again (a duplicate), after the cached engine forgot the workflow (eviction at any message), or
against an older state version (a decision that was not saved, another instance's write); signals
race timers and tasks in ``ctx.any``, the client cancels mid-step, updates and queries come at any
point, runs continue as new, children start, tasks fail and retry, a patch marker is recorded.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pulsarflow as pf
from pulsarflow.converter import JsonConverter
from pulsarflow.engines import task as task_engine
from pulsarflow.engines.outgoing import Decision, Outgoing
from pulsarflow.engines.workflow import WorkflowEngine
from pulsarflow.errors import ApplicationError, ErrorInfo
from pulsarflow.failures import error_info
from pulsarflow.interpreter.registry import Registry
from pulsarflow.messages import (
    CancelWorkflow,
    ExecuteTask,
    QueryWorkflow,
    ReplyTo,
    SendSignal,
    StartWorkflow,
    TaskExecutorMessage,
    UpdateCall,
    UpdateWorkflow,
    WorkflowEngineMessage,
    WorkflowState,
)
from pulsarflow.topics import Topics

JSON = JsonConverter()
T0 = 1_767_225_600_000


@pf.task(retry=pf.RetryPolicy(max_attempts=2, initial_delay=1.0, jitter=0.0))
def bump(n: int) -> int:
    return n + 1


@pf.workflow(name="cache_child")
async def cache_child(ctx: pf.WorkflowContext, n: int) -> int:
    first = ctx.any(ctx.sleep(3), ctx.wait_signal("poke"))
    await first
    return await ctx.task(bump, n) + first.index


@pf.workflow(name="cache_race")
async def cache_race(ctx: pf.WorkflowContext, rounds: int, carried: list[Any]) -> dict[str, Any]:
    got: list[Any] = list(carried)
    items: list[str] = []

    def add(item: str) -> int:
        if not item:
            raise ValueError("an item needs a name")
        items.append(item)
        return len(items)

    ctx.on_update("add", add)
    ctx.on_query("got", lambda: [list(got), list(items)])
    if ctx.patched("v2"):
        got.append("v2")
    try:
        for i in range(rounds):
            race = ctx.any(ctx.sleep(10), ctx.wait_signal("msg"), ctx.task(bump, i))
            try:
                value = await race
            except pf.TaskFailedError as exc:
                value = f"failed {exc.error.type}"
            got.append([race.index, value, int(ctx.now().timestamp())])
            if i == 1:
                both = await ctx.all(ctx.task(bump, 10 + i), ctx.sleep(2))
                got.append([both[0], await ctx.side_effect(lambda: 7)])
            if i == 2:
                loser = ctx.task(bump, 100)
                pick = ctx.any(ctx.wait_signal("msg"), ctx.sleep(1), cancel_losers=True)
                got.append(await pick)
                loser.cancel()
        got.append(await ctx.child(cache_child, len(got)))
    except pf.WorkflowCancelledError:
        got.append(["cleanup", await ctx.task(bump, -1)])
        return {"got": got, "items": items, "cancelled": True}
    if not carried:
        ctx.continue_as_new(rounds, got)
    try:
        got.append(await ctx.wait_signal("other", timeout=5))
    except pf.SignalTimeoutError:
        got.append("no other")
    return {"got": got, "items": items, "uuid": str(ctx.uuid4()), "random": ctx.random().random()}


REGISTRY = Registry([bump, cache_child, cache_race])
TOPICS = Topics(app="cache")
TRACEBACK = re.compile(r"traceback=(?:'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")")
ADDRESS = re.compile(r" at 0x[0-9a-f]+")  # reprs of objects in error messages


def seen(decision: Decision[WorkflowState]) -> str:
    """What a decision does, tracebacks aside (their outer frames differ between resume and replay)."""
    shown = repr((decision.state, decision.outgoing, decision.unchanged, decision.errors))
    return ADDRESS.sub(" at 0x...", TRACEBACK.sub("traceback=...", shown))


@dataclass
class Pair:
    """Two engines, cache on and off, fed the same messages; each keeps its own states per key."""

    cached: WorkflowEngine = field(default_factory=lambda: WorkflowEngine(REGISTRY, JSON, TOPICS, cache_size=1000))
    plain: WorkflowEngine = field(default_factory=lambda: WorkflowEngine(REGISTRY, JSON, TOPICS, cache_size=0))
    states: dict[str, WorkflowState | None] = field(default_factory=dict)
    versions: dict[str, list[WorkflowState]] = field(default_factory=dict)  # every state a key went through
    pending: list[Outgoing] = field(default_factory=list)
    now: int = T0
    sent: int = 0
    decisions: int = 0

    def handle(self, key: str, message: Any, at: int | None = None) -> None:
        self.now = max(self.now, at or 0)
        self.sent += 1
        envelope = WorkflowEngineMessage(f"m{self.sent}", key, self.now, message)
        state = self.states.get(key)
        cached = self.cached.handle(state, envelope, self.now)
        plain = self.plain.handle(state, envelope, self.now)
        assert seen(cached) == seen(plain), f"cached and replayed runs differ on {type(message).__name__}"
        self.decisions += 1
        if not plain.unchanged and plain.state is not None:
            self.states[key] = plain.state
            self.versions.setdefault(key, []).append(plain.state)
        self.pending.extend(plain.outgoing)

    def deliver(self, index: int, fail: bool, keep: bool) -> None:
        """Deliver pending message ``index`` (kept in the queue too for a duplicate, when ``keep``)."""
        o = self.pending[index] if keep else self.pending.pop(index)
        if o.topic == TOPICS.workflow_engine:
            self.handle(o.key, o.message.message, o.deliver_at_ms)
        elif isinstance(o.message, TaskExecutorMessage) and isinstance(o.message.message, ExecuteTask):
            self.now = max(self.now, o.deliver_at_ms or 0) + 1
            self.pending.extend(self.execute(o.message.message, fail))

    def execute(self, task: ExecuteTask, fail: bool) -> list[Outgoing]:
        if fail:
            info: ErrorInfo = error_info(ApplicationError("simulated", type="Flaky"), task_name=task.task_name,
                                         attempts=task.attempt)
            return task_engine.after_failure(TOPICS, task, info, self.now)
        (n,) = JSON.decode(task.input)
        return task_engine.after_success(TOPICS, task, JSON.encode([n + 1]), self.now)


ROOT = "root"


def reply(pair: Pair) -> ReplyTo:
    return ReplyTo(TOPICS.client("c1"), f"r{pair.sent}", identity=True)


def run_scenario(pair: Pair, actions: list[tuple[Any, ...]]) -> None:
    pair.handle(ROOT, StartWorkflow("cache_race", JSON.encode([3, []]), reply=reply(pair)))
    signals: list[str] = []
    for action in actions:
        kind = action[0]
        if kind == "deliver" and pair.pending:
            pair.deliver(action[1] % len(pair.pending), fail=action[2], keep=action[3])
        elif kind == "signal":
            signal_id = signals[action[2] % len(signals)] if action[3] and signals else f"s{pair.sent}"
            signals.append(signal_id)
            key = ROOT if action[4] else next((k for k in pair.states if k != ROOT), ROOT)
            pair.handle(key, SendSignal(signal_id, action[1], JSON.encode([f"v{pair.sent}"]), reply=reply(pair)))
        elif kind == "update":
            pair.handle(ROOT, UpdateWorkflow(UpdateCall(f"u{action[2]}", action[1], JSON.encode([f"i{action[2]}"]
                                                                                                 if action[2] else
                                                                                                 [""])),
                                             reply(pair)))
        elif kind == "query":
            pair.handle(ROOT, QueryWorkflow("got", JSON.encode([]), reply(pair)))
        elif kind == "cancel":
            pair.handle(ROOT, CancelWorkflow("a client changed its mind", reply(pair)))
        elif kind == "evict":
            pair.cached.live.forget(ROOT if action[1] else next(iter(pair.states)))
        elif kind == "stale":  # an older state version comes back: a decision not saved, another writer
            key = ROOT if action[2] else next(iter(pair.states))
            versions = pair.versions.get(key, [])
            if versions:
                pair.states[key] = versions[action[1] % len(versions)]
        elif kind == "wait":
            pair.now += action[1]


ACTION = st.one_of(
    st.tuples(st.just("deliver"), st.integers(0, 50), st.sampled_from([False, False, False, True]),
              st.sampled_from([False, False, False, True])),
    st.tuples(st.just("signal"), st.sampled_from(["msg", "msg", "other", "poke", "nobody"]), st.integers(0, 9),
              st.booleans(), st.booleans()),
    st.tuples(st.just("update"), st.sampled_from(["add", "add", "nope"]), st.integers(0, 4)),
    st.tuples(st.just("query")),
    st.tuples(st.just("cancel")),
    st.tuples(st.just("evict"), st.booleans()),
    st.tuples(st.just("stale"), st.integers(0, 30), st.booleans()),
    st.tuples(st.just("wait"), st.integers(1, 12_000)),
)


EXAMPLES = int(os.environ.get("PULSARFLOW_CACHE_EXAMPLES", "300"))  # 3,000 for a longer attack


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(ACTION, min_size=5, max_size=80))
def test_cached_and_replayed_engines_decide_the_same_under_hostile_delivery(actions: list[tuple[Any, ...]]) -> None:
    pair = Pair()
    run_scenario(pair, actions)
    # drain what is left in order, as a quiet network would: both engines still agree to the end
    for _ in range(200):
        if not pair.pending:
            break
        pair.deliver(0, fail=False, keep=False)


def test_the_attack_exercises_the_cache() -> None:
    """A plain run of the scenario hits the cache most of the time: the comparison above is not vacuous."""
    pair = Pair()
    actions: list[tuple[Any, ...]] = [("signal", "msg", 0, False, True), ("update", "add", 1), ("query",)]
    actions += [("deliver", 0, False, False)] * 60
    run_scenario(pair, actions)
    assert pair.cached.live.hits > pair.cached.live.misses > 0
    assert pair.plain.live.hits == 0
    final = pair.states[ROOT]
    assert final is not None and final.status == "COMPLETED" and final.runs == 1
