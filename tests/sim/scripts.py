"""Random scenarios: root workflows with scripts, and client actions at virtual times.

A script is a list of statements, each a JSON dict with a kind ``k``:

- ``task``: ``id``, ``dur`` (ms the attempt runs), ``fail`` (attempts that fail), ``exc`` (what
  they raise), ``max``, ``delay``, ``nr`` (its RetryPolicy: max attempts, first delay, non-retryable)
- ``sleep``: ``ms``; ``wait``: ``name``, ``timeout`` (ms or None); ``child``: ``script``
- ``all`` / ``any``: ``items`` (expressions: the kinds above, or all/any when nesting is on)
- ``loop``: ``n`` times ``ctx.any(ctx.sleep(ms), ctx.wait_signal(name))``
- ``upd``: declare update handler ``name``; ``try``: ``body``, ``handler``, ``cancel`` (also catch
  cancellation, clean up, re-raise); ``can``: continue as new with the statements after it

Time is chosen so that the reference interpreter can decide every race: script durations are
multiples of 100 ms, and each root start and client action gets its own offset in 1..99 ms,
so events caused by different actions never fall on the same millisecond.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

EXCEPTION_NAMES = ["ValueError", "UnicodeDecodeError", "LookupError", "KeyError", "RuntimeError"]
NON_RETRYABLE = [[], [], ["ValueError"], ["LookupError"]]
SIGNALS = ["a", "b", "msg"]
UPDATES = ["u", "v"]
HORIZON_MS = 30_000  # client actions happen before this


@dataclass
class Action:
    at: int
    workflow_id: str
    kind: str  # signal, update, cancel, retry
    name: str = ""
    arg: int = 0
    action_id: str = ""


@dataclass
class Root:
    workflow_id: str
    start: int
    script: list[Any]
    retryable: bool = False  # its script is flat, so that a retry resumes at the failed statement


@dataclass
class Scenario:
    seed: int
    roots: list[Root]
    actions: list[Action] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @staticmethod
    def from_json(text: str) -> Scenario:
        data = json.loads(text)
        return Scenario(data["seed"], [Root(**r) for r in data["roots"]], [Action(**a) for a in data["actions"]])

    def copy(self) -> Scenario:
        return Scenario.from_json(self.to_json())


class Generator:
    def __init__(self, rng: random.Random, nesting: bool) -> None:
        self.rng = rng
        self.nesting = nesting
        self.tasks = 0

    def task(self) -> dict[str, Any]:
        r = self.rng
        self.tasks += 1
        return {"k": "task", "id": f"t{self.tasks}", "dur": 100 * r.randint(1, 30),
                "fail": r.choice([0, 0, 0, 0, 0, 1, 1, 2, 3]), "exc": r.choice(EXCEPTION_NAMES),
                "max": r.randint(1, 4), "delay": 100 * r.randint(1, 5), "nr": r.choice(NON_RETRYABLE)}

    def wait(self, in_child: bool) -> dict[str, Any]:
        """A signal wait; in a child (which gets no signals) it mostly has a timeout, else it waits forever."""
        timeout = 1000 * self.rng.randint(1, 10) if self.rng.random() < (0.8 if in_child else 0.5) else None
        return {"k": "wait", "name": self.rng.choice(SIGNALS), "timeout": timeout}

    def leaf(self, depth: int, in_child: bool) -> dict[str, Any]:
        roll = self.rng.random()
        if roll < 0.4:
            return self.task()
        if roll < 0.6:
            return {"k": "sleep", "ms": 1000 * self.rng.randint(1, 5)}
        if roll < 0.85 or depth >= 2:
            return self.wait(in_child)
        return {"k": "child", "script": self.block(depth + 1, True, self.rng.randint(1, 3))}

    def expression(self, kind: str, depth: int, in_child: bool) -> dict[str, Any]:
        items = []
        for _ in range(self.rng.randint(2, 3)):
            if self.nesting and depth < 2 and self.rng.random() < 0.25:
                items.append(self.expression(self.rng.choice(["all", "any"]), depth + 1, in_child))
            else:
                items.append(self.leaf(depth, in_child))
        return {"k": kind, "items": items}

    def statement(self, depth: int, in_child: bool, top: bool) -> dict[str, Any]:
        r = self.rng
        kind = r.choices(["leaf", "all", "any", "loop", "upd", "try", "can"],
                         [5, 2, 3, 1, 0 if in_child else 1, 1 if depth < 2 else 0, 1 if top else 0])[0]
        if kind == "leaf":
            return self.leaf(depth, in_child)
        if kind in ("all", "any"):
            return self.expression(kind, depth, in_child)
        if kind == "loop":
            if in_child:
                return {"k": "sleep", "ms": 1000 * r.randint(1, 5)}
            return {"k": "loop", "n": r.randint(1, 4), "ms": 1000 * r.randint(2, 8), "name": "msg"}
        if kind == "upd":
            return {"k": "upd", "name": r.choice(UPDATES)}
        if kind == "try":
            handler = [self.leaf(depth + 1, True) for _ in range(r.randint(0, 1))]
            return {"k": "try", "body": self.block(depth + 1, in_child, r.randint(1, 2), top=False),
                    "handler": handler, "cancel": r.random() < 0.5}
        return {"k": "can"}

    def block(self, depth: int, in_child: bool, size: int, top: bool = True) -> list[Any]:
        return [self.statement(depth, in_child, top) for _ in range(size)]

    def flat(self, size: int) -> list[Any]:
        """A script of top-level steps only (a retry resumes it at its failed task)."""
        out: list[Any] = []
        for _ in range(size):
            kind = self.rng.choices(["task", "sleep", "wait", "upd", "can"], [5, 1, 1, 1, 1])[0]
            if kind == "task":
                out.append({**self.task(), "fail": self.rng.randint(1, 3)})
            elif kind == "sleep":
                out.append({"k": "sleep", "ms": 1000 * self.rng.randint(1, 5)})
            elif kind == "wait":
                out.append(self.wait(False))
            else:
                out.append({"k": "upd", "name": self.rng.choice(UPDATES)} if kind == "upd" else {"k": "can"})
        return out


def names_in(script: Any, kind: str) -> set[str]:
    """Signal (kind "wait") or update ("upd") names a script uses, children included."""
    if isinstance(script, list):
        return set().union(*(names_in(s, kind) for s in script)) if script else set()
    if not isinstance(script, dict):
        return set()
    found = {script["name"]} if script.get("k") == kind or (kind == "wait" and script.get("k") == "loop") else set()
    for value in script.values():
        if isinstance(value, (list, dict)):
            found |= names_in(value, kind)
    return found


def generate(seed: int, nesting: bool = True, variant: int = 0,
             duration: Callable[[list[Any]], float] | None = None) -> Scenario:
    """The scenario of ``seed``; ``variant`` picks another one when the reference finds a race undecidable.

    ``duration(script)`` estimates how long a root runs without client actions (the reference
    knows), so that most actions fall while it runs.
    """
    rng = random.Random(f"{seed}/{variant}")
    gen = Generator(rng, nesting)
    offsets = iter(rng.sample(range(1, 100), 99))
    roots: list[Root] = []
    actions: list[Action] = []
    for i in range(rng.choice([1, 1, 2, 3])):
        retryable = rng.random() < 0.15
        gen.nesting = nesting and rng.random() < 0.35
        script = gen.flat(rng.randint(1, 4)) if retryable else gen.block(0, False, rng.randint(1, 5))
        if rng.random() < 0.3:
            script.insert(0, {"k": "upd", "name": rng.choice(UPDATES)})
        root = Root(f"r{i}", next(offsets), script, retryable)
        roots.append(root)
        estimate = duration(script) if duration is not None else HORIZON_MS
        horizon = int(min(HORIZON_MS, max(2_000, 1.3 * estimate)))
        signals = sorted(names_in(script, "wait")) or SIGNALS
        updates = sorted(names_in(script, "upd")) or UPDATES
        mine = [Action(0, root.workflow_id, "signal", rng.choice(signals) if rng.random() < 0.9 else
                       rng.choice(SIGNALS)) for _ in range(rng.randint(0, 6))]
        mine += [Action(0, root.workflow_id, "update", rng.choice(updates) if rng.random() < 0.9 else
                        rng.choice(UPDATES), rng.randint(-1, 9)) for _ in range(rng.choice([0, 0, 1, 2]))]
        if rng.random() < 0.15:
            mine.append(Action(0, root.workflow_id, "cancel"))
        if retryable:
            mine += [Action(0, root.workflow_id, "retry") for _ in range(rng.randint(1, 2))]
        for action in mine:  # a retry mostly after the run would have failed
            late = action.kind == "retry" and rng.random() < 0.8
            action.at = 100 * rng.randint(horizon // 130 if late else 0, horizon // 100 + (50 if late else 0)) + next(
                offsets)
        actions += mine
    for n, action in enumerate(actions):
        action.action_id = f"{action.kind}{n}"
    actions.sort(key=lambda a: a.at)
    return Scenario(seed, roots, actions)


def has_nesting(script: Any) -> bool:
    if isinstance(script, list):
        return any(has_nesting(s) for s in script)
    if not isinstance(script, dict):
        return False
    if script.get("k") in ("all", "any") and any(i["k"] in ("all", "any") for i in script["items"]):
        return True
    return any(has_nesting(v) for v in script.values() if isinstance(v, (list, dict)))
