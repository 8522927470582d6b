"""The invariants checked after every simulated run, each with a name the reports use."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

from pulsarflow.messages import QueryAnswer, WorkflowState
from pulsarflow.messages import client as status
from pulsarflow.messages.executor import step_task_id
from tests.sim.flows import EXCEPTIONS
from tests.sim.network import JSON, Network
from tests.sim.reference import Expected
from tests.sim.scripts import Scenario

INVARIANTS = {
    "signal-lost": "(a) a signal that a running workflow accepted was neither consumed by a wait the code "
                   "awaited nor left buffered",
    "signal-twice": "(a) a signal was consumed by more than one wait",
    "task-after-close": "(b) a task attempt started after its run had closed",
    "running-task-not-cancelled": "(b) an attempt still running when its run closed was not sent a CancelTask",
    "closed-run-reacted": "(b) a task outcome, timer or child outcome of a closed run changed the state or sent "
                          "messages",
    "child-outlives-parent": "(b) a child workflow ran on after its parent's run closed, without being cancelled",
    "non-retryable-retried": "a task was retried after raising a type (or subclass) its policy lists as "
                             "non-retryable",
    "result-mismatch": "(c) a root workflow's status or result differs from the reference interpreter's",
    "update-mismatch": "(c) an update's answer differs from the reference interpreter's",
    "duplicates-changed": "(d) the run with duplicates, crashes and redeliveries ended differently",
    "engine-crash": "an engine raised on a message (the runtime would dead-letter it)",
}


@dataclass(frozen=True)
class Violation:
    invariant: str
    detail: str

    def __str__(self) -> str:
        return f"{self.invariant}: {self.detail}"


def check(scenario: Scenario, net: Network, expected: dict[str, Expected]) -> list[Violation]:
    final = net.final_states()
    found = [Violation("engine-crash", c) for c in net.trace.crashes]
    found += [Violation("closed-run-reacted", r) for r in net.trace.reacted]
    found += signals(net, final) + after_close(net, final) + non_retryable(net)
    found += results(scenario, net, final, expected)
    return found


def pending_signals(net: Network, wid: str, state: WorkflowState) -> Counter[Any]:
    """Signals the final run still holds for a later wait.

    Those are the buffered ones and (for engines that record each signal as an arrival) the
    ones received in this run, less those the run's waits consumed (an engine may keep a
    consumed signal in its buffer and let every replay hand it to the same wait).
    """
    held = Counter(JSON.decode(b.data)[0] for b in state.buffered_signals)
    for arrival in state.arrivals:
        signal = getattr(arrival, "signal", None)
        if signal is not None:
            held[JSON.decode(signal.data)[0]] += 1
    return held - Counter(net.trace.consumed.get((wid, state.runs), {}).values())


def signals(net: Network, final: dict[str, WorkflowState]) -> list[Violation]:
    found = []
    for wid, accepted in net.trace.accepted.items():
        consumed = Counter(v for (w, _), seen in net.trace.consumed.items() if w == wid for v in seen.values())
        pending = pending_signals(net, wid, final[wid])
        for data in accepted:
            count = consumed[data] + pending[data]
            if count == 0:
                found.append(Violation("signal-lost", f"{wid}: signal {data!r} was accepted, then neither "
                                                      "consumed by an awaited wait nor kept for a later one"))
            elif count > 1:
                found.append(Violation("signal-twice", f"{wid}: signal {data!r} consumed {consumed[data]} times, "
                                                       f"kept {pending[data]} times"))
    return found


def after_close(net: Network, final: dict[str, WorkflowState]) -> list[Violation]:
    found = []
    for a in net.trace.attempts:
        closed = net.trace.closes.get((a.workflow_id, a.generation))
        if not a.first or closed is None:
            continue
        if a.start > closed[0]:
            found.append(Violation("task-after-close", f"{a.workflow_id}: task {a.spec['id']} (position "
                                   f"{a.position}, run {a.generation}) attempt {a.attempt} started at {a.start} ms, "
                                   f"its run closed at {closed[0]} ms"))
        elif a.start + a.spec["dur"] > closed[0] and (step_task_id(a.workflow_id, a.position), a.generation) not in (
                net.trace.told_to_cancel):
            found.append(Violation("running-task-not-cancelled", f"{a.workflow_id}: task {a.spec['id']} attempt "
                                   f"{a.attempt} ran {a.start}..{a.start + a.spec['dur']} ms, its run "
                                   f"{a.generation} closed at {closed[0]} ms and sent it no CancelTask"))
    for wid, (parent, generation) in net.trace.parents.items():
        closed = net.trace.closes.get((parent, generation))
        state = final[wid]
        ended = math.inf if state.status == status.RUNNING or state.closed_at_ms is None else state.closed_at_ms
        if closed is not None and ended > closed[0] and net.trace.cancelled.get(wid, math.inf) > closed[0]:
            found.append(Violation("child-outlives-parent", f"{wid} ran on {'for good' if ended == math.inf else 'to '}"
                                   f"{'' if ended == math.inf else str(ended) + ' ms'}, without being cancelled, after "
                                   f"its parent {parent} (run {generation}) closed at {closed[0]} ms"))
    return found


def non_retryable(net: Network) -> list[Violation]:
    found = []
    ran = {(a.workflow_id, a.position, a.generation, a.attempt) for a in net.trace.attempts}
    for a in net.trace.attempts:
        if not a.first or a.error is None:
            continue
        listed = tuple(EXCEPTIONS[n] for n in a.spec["nr"])
        if issubclass(EXCEPTIONS[a.error], listed) and (a.workflow_id, a.position, a.generation, a.attempt + 1) in ran:
            found.append(Violation("non-retryable-retried", f"{a.workflow_id}: task {a.spec['id']} raised {a.error} "
                                   f"(non-retryable: {a.spec['nr']}) and was retried"))
    return found


def describe_state(state: WorkflowState | None) -> tuple[str, Any]:
    """(status, result or error type); a run blocked by its own code reads ("BLOCKED", reason type)."""
    if state is None:
        return "NONE", None
    blocked = getattr(state, "blocked", None)  # engines that keep a run open when its code breaks
    if blocked is not None and state.status == status.RUNNING:
        return "BLOCKED", getattr(blocked.reason, "type", repr(blocked))
    if state.status == status.COMPLETED:
        return state.status, JSON.decode(state.result or b"[null]")[0]
    return state.status, state.error.type if state.error else None


def results(scenario: Scenario, net: Network, final: dict[str, WorkflowState],
            expected: dict[str, Expected]) -> list[Violation]:
    found = []
    for root in scenario.roots:
        want = expected[root.workflow_id]
        got = describe_state(final.get(root.workflow_id))
        wanted = (want.status, want.result if want.status == status.COMPLETED else want.error)
        if want.status == status.RUNNING:
            wanted = (status.RUNNING, got[1] if got[0] == status.RUNNING else None)
        if got != wanted:
            found.append(Violation("result-mismatch", f"{root.workflow_id}: engine {got}, reference {wanted}"))
        for update_id, answer in want.updates.items():
            replies = [m for m in net.answers.get(update_id, []) if isinstance(m, QueryAnswer)]
            if not replies:
                found.append(Violation("update-mismatch", f"{root.workflow_id}: update {update_id} got no answer"))
                continue
            value = None if replies[0].error is not None else JSON.decode(replies[0].value or b"[null]")[0]
            if value != answer:
                found.append(Violation("update-mismatch", f"{root.workflow_id}: update {update_id} answered "
                                       f"{value if replies[0].error is None else replies[0].error.type}, "
                                       f"reference {answer}"))
    return found


def canonical(net: Network, skip: set[str]) -> dict[str, Any]:
    """Each workflow's end and history, without the order of outcomes that arrived at the same time.

    Outcomes that arrived in the instant the workflow closed are left out: whether they came
    just before or just after the closing one depends on the delivery order (steps nobody awaits).
    """
    out: dict[str, Any] = {}
    for wid, state in sorted(net.final_states().items()):
        if wid in skip:
            continue
        closed = state.closed_at_ms if state.closed_at_ms is not None else math.inf
        arrivals = sorted((a.position, a.at_ms, a.value, a.error.type if a.error else None,
                           a.update.update_id if a.update else None, repr(getattr(a, "signal", None)))
                          for a in state.arrivals if a.at_ms < closed)
        out[wid] = (describe_state(state), state.generation, state.runs,
                    [(c.kind, c.name) for c in state.commands], arrivals,
                    sorted(b.data for b in state.buffered_signals))
    return {"workflows": out, "closes": sorted((k, v[0]) for k, v in net.trace.closes.items() if k[0] not in skip)}


def compare(base: Network, faulty: Network) -> list[Violation]:
    """Both runs' histories, except those of cancelled children: what a cancelled child did before the
    cancel reached it depends on how its own steps and the cancel were ordered in that instant."""
    skip = {w for net in (base, faulty) for w in net.trace.cancelled if w in net.trace.parents}
    one, two = canonical(base, skip), canonical(faulty, skip)
    if one == two:
        return []
    diffs = [f"{wid}: {one['workflows'].get(wid)} != {two['workflows'].get(wid)}"
             for wid in sorted(set(one["workflows"]) | set(two["workflows"]))
             if one["workflows"].get(wid) != two["workflows"].get(wid)]
    if one["closes"] != two["closes"]:
        diffs.append(f"closed runs {one['closes']} != {two['closes']}")
    return [Violation("duplicates-changed", "; ".join(diffs)[:2000])]
