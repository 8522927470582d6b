"""Deterministic simulation of the pure engines: random workflows, client actions and delivery faults.

Each seed generates root workflows (scripts run by ``tests/sim/flows.py``), client actions at
virtual times and a fault plan; the engines run on a simulated network twice (plainly, then
with duplicates, crashes before saves and redeliveries) and ``tests/sim/invariants.py``
checks both runs against each other and against the reference interpreter.

    .venv/bin/python -m pytest -q tests/sim
    PULSARFLOW_SIM_SEEDS=200      seeds in the sweep (default 2000)
    PULSARFLOW_SIM_SEED=17        only seed 17, printing its scenario, violations and history (-s)
    PULSARFLOW_SIM_NESTING=0      no nested ctx.all / ctx.any in generated scripts
    PULSARFLOW_SIM_DISORDER=0     every run keeps each key's delivery order

A seed that breaks an invariant is printed with a shrunk scenario and its delivery history.
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

import pytest

from pulsarflow.engines.workflow import WorkflowEngine
from pulsarflow.messages import SendSignal
from pulsarflow.messages import client as status
from tests.sim.harness import KNOWN_DEFECT, NESTING_UNSUPPORTED, check_seed, explain, run, summary, sweep
from tests.sim.invariants import INVARIANTS
from tests.sim.network import JSON
from tests.sim.scripts import Action, Root, Scenario
from tests.sim.trace import Faults

SEEDS = int(os.environ.get("PULSARFLOW_SIM_SEEDS", "2000"))
ONE_SEED = os.environ.get("PULSARFLOW_SIM_SEED")
NESTING = os.environ.get("PULSARFLOW_SIM_NESTING", "1") != "0"
EXPLAINED = 2  # failing invariants shown with a shrunk scenario in the sweep's report

# Defects the simulation found in the engines, each with seeds that reproduce it (on the code before
# its fix) and the invariants it breaks. A defect whose fix has not landed yet goes in STILL_BROKEN:
# its seeds are then strict xfails.
BUGS: dict[str, tuple[str, set[str], list[int]]] = {
    "abandoned-wait": ("a signal is consumed by a wait that a ctx.any abandoned when its timer won",
                       {"signal-lost", "result-mismatch"}, [663, 493]),
    "retry-after-close": ("a task retry runs after its workflow closed",
                          {"task-after-close"}, [307, 1344]),
    "non-retryable-subclass": ("non_retryable ignores subclasses of the listed types",
                               {"non-retryable-retried", "result-mismatch"}, [209, 435]),
    "close-leaves-tasks": ("a run that closes does not tell its running task attempts to cancel",
                           {"running-task-not-cancelled"}, [1156, 257]),
    "close-leaves-children": ("a run that closes leaves its children running",
                              {"child-outlives-parent", "task-after-close"}, [1152, 14]),
    "nesting": ("ctx.all / ctx.any refuse nested all / any (TypeError)", {NESTING_UNSUPPORTED}, [531, 106]),
    "refused-then-redelivered": ("a request the engine refused (here a signal sent before the workflow started) is "
                                 "applied when a redelivered copy comes a minute later, after the run changed",
                                 {"result-mismatch", "duplicates-changed"}, [7706]),
    "unsaved-decision-echo": ("a decision that closes or cancels a run is published, then not saved; the "
                              "cancelled child's ChildFailed overtakes the redelivered input and ends the run "
                              "otherwise than the client was told", {"result-mismatch", "duplicates-changed"},
                              [15910, 13271, 12103]),
}
STILL_BROKEN: set[str] = {"refused-then-redelivered", "unsaved-decision-echo"}
# Seeds of the sweep that may fail, and only on these invariants, until their defect is fixed.
KNOWN = {seed: BUGS[bug][1] for bug in STILL_BROKEN for seed in BUGS[bug][2]}


def _regressions() -> list[Any]:
    cases = []
    for bug, (reason, _, seeds) in BUGS.items():
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if bug in STILL_BROKEN else []
        cases += [pytest.param(bug, seed, marks=marks, id=f"{bug}-{seed}") for seed in seeds]
    return cases


@pytest.mark.parametrize(("bug", "seed"), _regressions())
def test_regression_seed(bug: str, seed: int) -> None:
    report = check_seed(seed)
    broken = BUGS[bug][1] & (report.names | ({NESTING_UNSUPPORTED} if report.expected_failure else set()))
    assert not broken, (explain(report, sorted(broken)[0], shrink_it=False) if broken != {NESTING_UNSUPPORTED}
                        else "the SDK refused a nested all/any")


def test_random_sweep() -> None:
    """Every invariant holds for every seed (seeds whose nesting the SDK refuses are set aside)."""
    if ONE_SEED is not None:
        report = check_seed(int(ONE_SEED), NESTING)
        print(f"\nseed {ONE_SEED}: {report.scenario.to_json()}\n{summary(report)}\n")
        print(explain(report, shrink_it=False) if report.names else report.base.format_history())
        assert not report.names or report.expected_failure, explain(report)
        return
    failing = sweep(range(SEEDS), NESTING, KNOWN)
    refused, known = failing.pop(NESTING_UNSUPPORTED, []), failing.pop(KNOWN_DEFECT, [])
    lines = [f"{len(refused)} of {SEEDS} seeds set aside: the SDK refused nested all/any"] if refused else []
    lines += [f"seeds {known} fail as their known defect says (see BUGS)"] if known else []
    for name, seeds in sorted(failing.items()):
        lines.append(f"{name} ({INVARIANTS[name]}): {len(seeds)} seeds, e.g. {seeds[:12]}")
    for name, seeds in sorted(failing.items())[:EXPLAINED]:
        lines.append(explain(check_seed(seeds[0], NESTING), name))
    assert not failing, "\n".join(lines)


def test_same_seed_same_run() -> None:
    """The simulation is deterministic: a seed replays to the same deliveries and the same verdict."""
    for seed in (3, 11):
        one, two = check_seed(seed), check_seed(seed)
        assert one.base.format_history() == two.base.format_history()
        assert one.faulty.format_history() == two.faulty.format_history()
        assert [str(v) for v in one.violations] == [str(v) for v in two.violations]


PLAIN = Scenario(0, [
    Root("r0", 5, [{"k": "upd", "name": "u"},
                   {"k": "task", "id": "t1", "dur": 300, "fail": 2, "exc": "KeyError", "max": 3, "delay": 200,
                    "nr": []},
                   {"k": "wait", "name": "a", "timeout": 4000}, {"k": "can"}, {"k": "upd", "name": "u"},
                   {"k": "sleep", "ms": 2000},
                   {"k": "wait", "name": "a", "timeout": None}]),
    Root("r1", 7, [{"k": "all", "items": [{"k": "sleep", "ms": 1000}, {"k": "child", "script": [
        {"k": "task", "id": "t2", "dur": 500, "fail": 1, "exc": "ValueError", "max": 1, "delay": 100, "nr": []}]}]}]),
], [Action(1_211, "r0", "update", "u", 4, "update0"), Action(1_523, "r0", "signal", "a", 0, "signal1"),
    Action(4_642, "r0", "signal", "a", 0, "signal2"), Action(3_037, "r0", "update", "u", 5, "update3"),
    Action(9_041, "r0", "update", "u", 6, "update4")])


def test_a_plain_scenario_meets_every_invariant() -> None:
    report = run(PLAIN, Faults(duplicate=0.3, late_duplicate=0.2, crash=0.2))
    assert report.violations == []
    final = report.base.final_states()
    assert JSON.decode(final["r0"].result or b"")[0] == {"acc": ["t1:3", "signal1", None, "signal2"], "log": [4, 5]}
    assert final["r1"].status == status.FAILED and final["r1"].error and (
        final["r1"].error.type == "ChildWorkflowFailedError")


def test_an_engine_that_forgets_signal_ids_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """A mutant: duplicates of a signal are taken again. The plain run passes, the one with duplicates not."""
    real = WorkflowEngine.handle

    def forgetful(self: WorkflowEngine, state: Any, envelope: Any, now_ms: int) -> Any:
        if state is not None and isinstance(envelope.message, SendSignal):
            state = replace(state, signal_ids=())
        return real(self, state, envelope, now_ms)

    monkeypatch.setattr(WorkflowEngine, "handle", forgetful)
    waits = Scenario(1, [Root("r0", 3, [{"k": "wait", "name": "a", "timeout": None} for _ in range(6)])],
                     [Action(1000 * n + 11 * n, "r0", "signal", "a", 0, f"signal{n}") for n in range(1, 7)])
    assert run(waits, Faults()).violations == []
    report = run(waits, Faults(duplicate=0.5))
    assert {"signal-twice", "duplicates-changed"} <= report.names, report.violations


def test_an_engine_with_a_wrong_result_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    real = WorkflowEngine.handle

    def wrong(self: WorkflowEngine, state: Any, envelope: Any, now_ms: int) -> Any:
        decision = real(self, state, envelope, now_ms)
        if decision.state is not None and decision.state.status == status.COMPLETED and not decision.unchanged:
            decision = replace(decision, state=replace(decision.state, result=JSON.encode(["wrong"])))
        return decision

    monkeypatch.setattr(WorkflowEngine, "handle", wrong)
    assert "result-mismatch" in run(PLAIN, Faults()).names


def test_live_workflows_and_replays_from_history_decide_the_same() -> None:
    """The workflow cache changes no decision: with live workflows kept between messages and with every
    message replaying the history, the same seeds (faults included: crashes before a save make the
    cache miss) deliver the same messages in the same order and end in the same states."""
    from tests.sim.harness import faults_for, scenario_for
    from tests.sim.network import Network

    compared = hits = 0
    for seed in range(0, 400, 2):
        scenario = scenario_for(seed, nesting=False)
        for label, faults in (("plain", Faults()), ("faulty", faults_for(seed))):
            cached = Network(scenario, faults, label).run()
            replayed = Network(scenario, faults, label, workflow_cache=0).run()
            assert cached.format_history() == replayed.format_history(), f"seed {seed} ({label}) differs"
            assert cached.final_states() == replayed.final_states(), f"seed {seed} ({label}) ends otherwise"
            hits += cached.engine.live.hits
            compared += 1
    assert compared == 400 and hits > 1_000, (compared, hits)  # the cached runs did use the cache
