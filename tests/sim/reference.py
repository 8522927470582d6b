"""The reference: a direct, non-durable interpreter of a script on a virtual timeline.

No history, no replay, no messages: statements run one after the other; an awaited
expression settles when its tasks, timers, signals (and the client's cancel) settle it, in
time order. It implements the target semantics: a signal goes to the first wait (in issue
order) that the code awaits when the signal arrives, else it is buffered and the buffer is
applied first in, first out when the code next awaits; waits of a settled all/any stop
claiming signals; non-retryable types match subclasses; a retry of a run that a task ended
resumes at that task (only flat scripts get retries). A race whose outcome depends on the
order of simultaneous events raises :class:`Ambiguous` (the generator then picks another
scenario).
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from tests.sim.flows import EXCEPTIONS
from tests.sim.scripts import Action

INF = math.inf
CANCELLED = "WorkflowCancelledError"
CAUGHT = ("TaskFailedError", "ChildWorkflowFailedError", "SignalTimeoutError")


class Ambiguous(Exception):
    """The outcome depends on the order of events at the same virtual time."""


class Stuck(Exception):
    """Nothing can happen any more: the workflow stays running."""


class Failure(Exception):
    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


@dataclass
class Expected:
    status: str
    result: Any = None  # {"acc": ..., "log": ...} when COMPLETED
    error: str | None = None  # error type when FAILED or CANCELLED
    end: float = INF  # when it closed
    updates: dict[str, int | None] = field(default_factory=dict)  # update id -> answer (None: refused)


@dataclass
class Node:
    kind: str  # task, sleep, wait, child, all, any
    children: list[Node] = field(default_factory=list)
    name: str = ""
    end: float = INF  # when a leaf settles by itself
    settles_with: tuple[bool, Any] = (True, None)  # (ok, value or error type) at ``end``
    done: bool = False
    order: float = INF
    ok: bool = True
    value: Any = None


def settled(node: Node) -> tuple[float, bool, Any] | None:
    """(order, ok, value or error type) once ``node`` has settled, else None (mirrors ctx.all / ctx.any)."""
    if not node.children:
        return (node.order, node.ok, node.value) if node.done else None
    results = [settled(c) for c in node.children]
    done = [r for r in results if r is not None]
    if node.kind == "any":
        return min(done, key=lambda r: r[0]) if done else None
    failures = [r for r in done if not r[1]]
    if failures:
        return min(failures, key=lambda r: r[0])
    if len(done) == len(results):
        return max(r[0] for r in done), True, [r[2] for r in done]
    return None


def active_leaves(node: Node) -> list[Node]:
    """Leaves still open under no settled all/any, in issue order."""
    if not node.children:
        return [] if node.done else [node]
    if settled(node) is not None:
        return []
    return [leaf for c in node.children for leaf in active_leaves(c)]


def task_run(spec: dict[str, Any], start: float, heal: float) -> tuple[float, tuple[bool, Any]]:
    """When a task step settles and how: attempts, backoff and non-retryable types like the policy says."""
    at, attempt = start, 1
    non_retryable = tuple(EXCEPTIONS[n] for n in spec["nr"])
    while True:
        end = at + spec["dur"]
        if attempt > spec["fail"] or at >= heal:
            return end, (True, f"{spec['id']}:{attempt}")
        if attempt >= spec["max"] or issubclass(EXCEPTIONS[spec["exc"]], non_retryable):
            return end, (False, "TaskFailedError")
        at = end + int(min(spec["delay"] * 2.0 ** (attempt - 1), 10_000))
        attempt += 1


class Reference:
    def __init__(self, script: list[Any], start: float, actions: list[Action], heal: float = INF,
                 retryable: bool = False) -> None:
        self.script = script
        self.now = start
        self.events = deque(sorted(actions, key=lambda a: a.at))
        self.heal = heal
        self.retryable = retryable
        self.buffer: list[tuple[str, str]] = []  # (signal data, name), oldest first
        self.handlers: set[str] = set()
        self.acc: list[Any] = []
        self.log: list[int] = []
        self.cancel_requested = False
        self.updates: dict[str, int | None] = {}
        self.seq = 0

    def run(self) -> Expected:
        self.refuse(lambda a: a.at < self.now)
        script, i = self.script, 0
        while True:
            try:
                while i < len(script):
                    if script[i]["k"] == "can":
                        script, i, self.handlers, self.cancel_requested = script[i + 1:], 0, set(), False
                        continue
                    self.statement(script[i])
                    i += 1
                return self.closed(Expected("COMPLETED", {"acc": self.acc, "log": self.log}, end=self.now))
            except Failure as failure:
                status = "CANCELLED" if failure.kind == CANCELLED and self.cancel_requested else "FAILED"
                ended = Expected(status, error=failure.kind, end=self.now)
            except Stuck:
                return Expected("RUNNING", updates=self.updates)
            if not self.resumed(ended):
                return self.closed(ended)

    def closed(self, expected: Expected) -> Expected:
        self.refuse(lambda a: True)
        expected.updates = self.updates
        return expected

    def resumed(self, ended: Expected) -> bool:
        """Whether a retry reopens the run (it then goes on at the failed statement)."""
        can_resume = self.retryable and ended.status == "FAILED" and ended.error == "TaskFailedError"
        while self.events:
            action = self.events.popleft()
            if action.kind == "retry" and can_resume:
                self.now = action.at
                return True
            self.refused(action)
        return False

    def refuse(self, which: Any) -> None:
        while self.events and which(self.events[0]):
            self.refused(self.events.popleft())

    def refused(self, action: Action) -> None:
        if action.kind == "update":
            self.updates[action.action_id] = None

    def each(self, statements: list[Any]) -> None:
        for node in statements:
            self.statement(node)

    def statement(self, node: dict[str, Any]) -> None:
        kind = node["k"]
        if kind == "upd":
            self.handlers.add(node["name"])
        elif kind == "try":
            try:
                self.each(node["body"])
            except Failure as failure:
                if failure.kind in CAUGHT:
                    self.acc.append(["caught", failure.kind])
                    self.each(node["handler"])
                elif failure.kind == CANCELLED and node["cancel"]:
                    self.acc.append(["caught", CANCELLED])
                    self.each(node["handler"])
                    raise
                else:
                    raise
        elif kind == "loop":
            race = {"k": "any", "items": [{"k": "sleep", "ms": node["ms"]},
                                          {"k": "wait", "name": node["name"], "timeout": None}]}
            for _ in range(node["n"]):
                self.acc.append(self.awaited(race))
        else:
            self.acc.append(self.awaited(node))

    def issue(self, node: dict[str, Any]) -> Node:
        kind = node["k"]
        if kind in ("all", "any"):
            return Node(kind, children=[self.issue(item) for item in node["items"]])
        if kind == "task":
            end, how = task_run(node, self.now, self.heal)
            return Node(kind, end=end, settles_with=how)
        if kind == "sleep":
            return Node(kind, end=self.now + node["ms"])
        if kind == "wait":
            timeout = node["timeout"]
            return Node(kind, name=node["name"], end=INF if timeout is None else self.now + timeout,
                        settles_with=(False, "SignalTimeoutError"))
        child = Reference(node["script"], self.now, []).run()
        if child.status == "RUNNING":
            return Node(kind)
        ok = child.status == "COMPLETED"
        return Node(kind, end=child.end, settles_with=(ok, child.result if ok else "ChildWorkflowFailedError"))

    def settle(self, leaf: Node, ok: bool, value: Any) -> None:
        leaf.done, leaf.order, leaf.ok, leaf.value = True, self.seq, ok, value
        self.seq += 1

    def awaited(self, node: dict[str, Any]) -> Any:
        tree = self.issue(node)
        self.apply_buffer(tree)
        while (result := settled(tree)) is None:
            leaves = active_leaves(tree)
            at = min((leaf.end for leaf in leaves), default=INF)
            next_action = self.events[0].at if self.events else INF
            if at == INF and next_action == INF:
                raise Stuck()
            if next_action < at:
                self.now = next_action
                self.on_action(self.events.popleft(), tree)
                continue
            if next_action == at:
                raise Ambiguous(f"a client action and a step settle at {at} ms")
            self.now = at
            batch = [leaf for leaf in leaves if leaf.end == at]
            self.check_order_free(tree, batch)
            for leaf in batch:
                self.settle(leaf, *leaf.settles_with)
        if not result[1]:
            raise Failure(result[2])
        return result[2]

    def check_order_free(self, tree: Node, batch: list[Node]) -> None:
        if len(batch) < 2:
            return
        if len(batch) > 4:
            raise Ambiguous(f"{len(batch)} steps settle at {self.now} ms")
        combinators = [n for n in _walk(tree) if n.children]
        seen = set()
        for order in itertools.permutations(batch):
            for i, leaf in enumerate(order):
                leaf.done, leaf.order, leaf.ok, leaf.value = True, self.seq + i, *leaf.settles_with
            seen.add(repr([(r[1], r[2]) if (r := settled(n)) else None for n in combinators]))
            for leaf in order:
                leaf.done, leaf.order = False, INF
        if len(seen) > 1:
            raise Ambiguous(f"the order of {len(batch)} steps settling at {self.now} ms decides the outcome")

    def apply_buffer(self, tree: Node) -> None:
        waits = {leaf.name for leaf in active_leaves(tree) if leaf.kind == "wait"}
        names = {name for _, name in self.buffer if name in waits}
        if len(names) > 1 and any(n.kind == "any" for n in _walk(tree)):
            raise Ambiguous(f"buffered signals {sorted(names)} race inside an any")
        for item in list(self.buffer):
            if settled(tree) is not None:
                return
            wait = open_wait(tree, item[1])
            if wait is not None:
                self.buffer.remove(item)
                self.settle(wait, True, item[0])


    def on_action(self, action: Action, tree: Node) -> None:
        if action.kind == "signal":
            wait = open_wait(tree, action.name)
            if wait is None:
                self.buffer.append((action.action_id, action.name))
            else:
                self.settle(wait, True, action.action_id)
        elif action.kind == "update":
            if action.name not in self.handlers or action.arg < 0:
                self.updates[action.action_id] = None
            else:
                self.log.append(action.arg)
                self.updates[action.action_id] = len(self.log)
        elif action.kind == "cancel" and not self.cancel_requested:
            self.cancel_requested = True
            for leaf in active_leaves(tree):
                self.settle(leaf, False, CANCELLED)


def open_wait(tree: Node, name: str) -> Node | None:
    """The first wait for ``name`` (in issue order) that the code still awaits."""
    return next((leaf for leaf in active_leaves(tree) if leaf.kind == "wait" and leaf.name == name), None)


def _walk(node: Node) -> list[Node]:
    return [node] + [n for c in node.children for n in _walk(c)]


def expected(script: list[Any], start: int, actions: list[Action], retryable: bool) -> Expected:
    """What a root workflow ends with; a retry heals its tasks from the first retry on."""
    heal = min((a.at for a in actions if a.kind == "retry"), default=INF)
    return Reference(script, start, actions, heal=heal, retryable=retryable).run()
