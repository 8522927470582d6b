"""The simulation's workflow code: one generic workflow that interprets a script, and one task.

A script is a list of statements (JSON dicts, see ``tests/sim/scripts.py``). The workflow
``sim`` runs it against the real SDK (``ctx.task``, ``ctx.all``/``ctx.any``, ...) and returns
``{"acc": [value of each statement], "log": [applied update arguments]}``. Workflow code and
the task report what they saw to ``PROBE``, a test-only side channel read by the network
after each engine call (``tests/sim/network.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pulsarflow as pf
from pulsarflow.interpreter.steps import Step

SERVICE = "sim"
WORKFLOW = "sim"
EXCEPTIONS: dict[str, type[Exception]] = {
    "ValueError": ValueError, "UnicodeDecodeError": UnicodeDecodeError,
    "LookupError": LookupError, "KeyError": KeyError, "RuntimeError": RuntimeError,
}
CAUGHT = (pf.TaskFailedError, pf.ChildWorkflowFailedError, pf.SignalTimeoutError)


def make_exception(name: str) -> Exception:
    if name == "UnicodeDecodeError":
        return UnicodeDecodeError("utf-8", b"\xff", 0, 1, "simulated")
    return EXCEPTIONS[name]("simulated")


def root_of(workflow_id: str) -> str:
    return workflow_id.split("/", 1)[0]


def fresh_carry() -> dict[str, Any]:
    return {"acc": [], "log": [], "run": 0}


@dataclass
class Tree:
    """The shape of one awaited expression: a leaf step, or all/any of subtrees."""

    kind: str  # "leaf", "all" or "any"
    step: Step | None = None
    wait: int | None = None  # the wait's instance number in this run, for a signal wait
    children: list[Tree] = field(default_factory=list)


def outcome(tree: Tree) -> tuple[float, bool]:
    """(order of the arrival that settled ``tree`` (inf while open), settled without error)."""
    if tree.kind == "leaf":
        step = tree.step
        assert step is not None
        return (step.order, step.error is None) if step.done else (math.inf, True)
    results = [outcome(c) for c in tree.children]
    if tree.kind == "any":
        return min(results, default=(math.inf, True))
    failures = [r for r in results if r[0] < math.inf and not r[1]]
    if failures:
        return min(failures)
    if all(r[0] < math.inf for r in results):
        return max(r[0] for r in results), True
    return math.inf, True


def consumed(tree: Tree, bound: float = math.inf) -> dict[int, Any]:
    """The waits of ``tree`` that got a signal while the code awaited them (before their all/any settled)."""
    if tree.kind == "leaf":
        step = tree.step
        assert step is not None
        ok = tree.wait is not None and step.done and step.error is None and step.order <= bound
        return {tree.wait: step.value} if ok and tree.wait is not None else {}
    own = min(bound, outcome(tree)[0])
    found: dict[int, Any] = {}
    for child in tree.children:
        found.update(consumed(child, own))
    return found


@dataclass
class RunRecord:
    """What one replay of one run saw: signals consumed per wait instance, and where it is blocked."""

    consumed: dict[int, Any] = field(default_factory=dict)
    blocked: Tree | None = None

    def seen(self) -> dict[int, Any]:
        return {**self.consumed, **(consumed(self.blocked) if self.blocked is not None else {})}


def seen(records: list[RunRecord]) -> dict[int, Any]:
    """What the replays of one run in one engine call saw (the shorter ones replayed a prefix)."""
    merged: dict[int, Any] = {}
    for record in records:
        merged.update(record.seen())
    return merged


@dataclass
class Probe:
    """Filled while an engine or the executor handles one message; the network takes it afterwards."""

    runs: dict[tuple[str, int], list[RunRecord]] = field(default_factory=dict)  # a handler may replay twice
    nesting_refused: set[str] = field(default_factory=set)
    attempts: list[tuple[str, int, int, int, str | None]] = field(default_factory=list)
    healed_at: dict[str, int] = field(default_factory=dict)  # root workflow id -> when its tasks stop failing
    now_ms: int = 0  # start of the attempt being run

    def begin(self) -> None:
        self.runs.clear()
        self.attempts.clear()


PROBE = Probe()


@pf.task(name="sim_task", service=SERVICE)
def sim_task(spec: dict[str, Any]) -> str:
    """Fails its first ``spec["fail"]`` attempts (until healed by a retry action), then returns id:attempt."""
    info = pf.task_info()
    healed = PROBE.healed_at.get(root_of(info.workflow_id))
    fails = info.attempt <= spec["fail"] and (healed is None or PROBE.now_ms < healed)
    PROBE.attempts.append((info.workflow_id, int(info.task_id.rsplit("/", 1)[1]), info.generation, info.attempt,
                           spec["exc"] if fails else None))
    if fails:
        raise make_exception(spec["exc"])
    return f"{spec['id']}:{info.attempt}"


def policy(spec: dict[str, Any]) -> pf.RetryPolicy:
    return pf.RetryPolicy(max_attempts=spec["max"], initial_delay=spec["delay"] / 1000, backoff_coefficient=2.0,
                          max_delay=10.0, jitter=0.0, non_retryable=[EXCEPTIONS[n] for n in spec["nr"]])


class Interpreter:
    """Runs a script's statements with the real ``ctx``; each statement's value goes to ``acc``."""

    def __init__(self, ctx: pf.WorkflowContext, carry: dict[str, Any]) -> None:
        self.ctx = ctx
        self.acc: list[Any] = carry["acc"]
        self.log: list[Any] = carry["log"]
        self.run = int(carry["run"])
        self.waits = 0
        self.record = RunRecord()
        PROBE.runs.setdefault((ctx.workflow_id, self.run), []).append(self.record)

    async def block(self, script: list[Any]) -> None:
        for i, node in enumerate(script):
            if node["k"] == "can":
                self.ctx.continue_as_new(script[i + 1:], {"acc": self.acc, "log": self.log, "run": self.run + 1})
            await self.statement(node)

    async def statement(self, node: dict[str, Any]) -> None:
        kind = node["k"]
        if kind == "upd":
            self.ctx.on_update(node["name"], self.on_update)
        elif kind == "try":
            await self.attempt(node)
        elif kind == "loop":
            race = {"k": "any", "items": [{"k": "sleep", "ms": node["ms"]},
                                          {"k": "wait", "name": node["name"], "timeout": None}]}
            for _ in range(node["n"]):
                self.acc.append(await self.awaited(race))
        else:
            self.acc.append(await self.awaited(node))

    async def attempt(self, node: dict[str, Any]) -> None:
        try:
            await self.block(node["body"])
        except CAUGHT as exc:
            self.acc.append(["caught", type(exc).__name__])
            await self.block(node["handler"])
        except pf.WorkflowCancelledError:
            if not node["cancel"]:
                raise
            self.acc.append(["caught", "WorkflowCancelledError"])
            await self.block(node["handler"])
            raise

    def on_update(self, arg: int) -> int:
        if arg < 0:
            raise ValueError(f"update argument {arg} refused")
        self.log.append(arg)
        return len(self.log)

    async def awaited(self, node: dict[str, Any]) -> Any:
        awaitable, tree = self.build(node)
        self.record.blocked = tree
        try:
            value = await awaitable
        except Exception:
            self.settled(tree)
            raise
        self.settled(tree)
        return value

    def settled(self, tree: Tree) -> None:
        self.record.consumed.update(consumed(tree))
        self.record.blocked = None

    def build(self, node: dict[str, Any]) -> tuple[Any, Tree]:
        kind = node["k"]
        if kind in ("all", "any"):
            built = [self.build(item) for item in node["items"]]
            combine = self.ctx.all if kind == "all" else self.ctx.any
            try:
                awaitable = combine(*[b[0] for b in built])
            except TypeError:
                if any(item["k"] in ("all", "any") for item in node["items"]):
                    PROBE.nesting_refused.add(self.ctx.workflow_id)
                raise
            return awaitable, Tree(kind, children=[b[1] for b in built])
        wait = None
        if kind == "task":
            step = self.ctx.task(sim_task, node, retry=policy(node))
        elif kind == "sleep":
            step = self.ctx.sleep(node["ms"] / 1000)
        elif kind == "child":
            step = self.ctx.child(sim, node["script"], fresh_carry())
        else:
            timeout = node["timeout"]
            step = self.ctx.wait_signal(node["name"], timeout=None if timeout is None else timeout / 1000)
            wait, self.waits = self.waits, self.waits + 1
        return step, Tree("leaf", step=step, wait=wait)


@pf.workflow(name=WORKFLOW)
async def sim(ctx: pf.WorkflowContext, script: list[Any], carry: dict[str, Any]) -> dict[str, Any]:
    await Interpreter(ctx, carry).block(script)
    return {"acc": carry["acc"], "log": carry["log"]}
