"""One seed end to end: generate, compute the reference, run the network twice, check, shrink, report."""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from tests.sim import invariants
from tests.sim.invariants import Violation
from tests.sim.network import Network
from tests.sim.reference import Ambiguous, Expected, expected
from tests.sim.scripts import HORIZON_MS, Scenario, generate, has_nesting
from tests.sim.trace import Faults

MAX_VARIANTS = 20
NESTING_UNSUPPORTED = "nesting-unsupported"
KNOWN_DEFECT = "known-defect"


DISORDER = os.environ.get("PULSARFLOW_SIM_DISORDER", "1") != "0"  # 0: every run keeps each key's order


def faults_for(seed: int) -> Faults:
    """The faults of a seed's second run; a quarter of the seeds also break per-key order."""
    rng = random.Random(f"{seed}/faults")
    disorder = 0.2 if rng.random() < 0.25 and DISORDER else 0.0
    return Faults(duplicate=0.1, late_duplicate=0.05, crash=0.05, disorder=disorder)


@dataclass
class Report:
    seed: int
    scenario: Scenario
    faults: Faults
    base: Network  # the plain run
    faulty: Network  # the run with faults
    violations: list[Violation] = field(default_factory=list)
    nesting_refused: bool = False

    @property
    def names(self) -> set[str]:
        return {v.invariant for v in self.violations}

    @property
    def expected_failure(self) -> bool:
        """The SDK refused a nested all/any (TypeError): a known limitation, not judged further."""
        return self.nesting_refused


def reference(scenario: Scenario) -> dict[str, Expected]:
    """The reference's expectations per root; raises Ambiguous for an undecidable race."""
    return {root.workflow_id: expected(root.script, root.start,
                                       [a for a in scenario.actions if a.workflow_id == root.workflow_id],
                                       root.retryable)
            for root in scenario.roots}


def alone(script: list[Any]) -> float:
    """How long a script runs without client actions (a guess when that cannot be decided)."""
    try:
        end = expected(script, 0, [], False).end
    except Ambiguous:
        return HORIZON_MS
    return end if end < HORIZON_MS else HORIZON_MS


def scenario_for(seed: int, nesting: bool = True) -> Scenario:
    """The first scenario of ``seed`` whose races the reference can decide."""
    for variant in range(MAX_VARIANTS):
        scenario = generate(seed, nesting, variant, alone)
        try:
            reference(scenario)
        except Ambiguous:
            continue
        return scenario
    raise AssertionError(f"seed {seed}: no decidable scenario in {MAX_VARIANTS} variants")


def run(scenario: Scenario, faults: Faults) -> Report:
    """Both runs (plain, then with faults) of one scenario, and every invariant."""
    want = reference(scenario)
    base = Network(scenario, Faults(), "plain").run()
    faulty = Network(scenario, faults, "faulty").run()
    report = Report(scenario.seed, scenario, faults, base=base, faulty=faulty)
    report.nesting_refused = bool(base.trace.nesting_refused | faulty.trace.nesting_refused) and any(
        has_nesting(r.script) for r in scenario.roots)
    report.violations = invariants.check(scenario, base, want)
    seen = {str(v) for v in report.violations}
    for v in invariants.check(scenario, faulty, want):
        if str(v) not in seen:
            report.violations.append(Violation(v.invariant, f"{v.detail} [with faults]"))
    report.violations += invariants.compare(base, faulty)
    return report


def check_seed(seed: int, nesting: bool = True) -> Report:
    return run(scenario_for(seed, nesting), faults_for(seed))


def candidates(scenario: Scenario) -> Iterator[Scenario]:
    """Smaller scenarios: one action, root or statement (or all/any item) fewer."""
    for i in range(len(scenario.actions)):
        smaller = scenario.copy()
        del smaller.actions[i]
        yield smaller
    if len(scenario.roots) > 1:
        for i, root in enumerate(scenario.roots):
            smaller = scenario.copy()
            del smaller.roots[i]
            smaller.actions = [a for a in smaller.actions if a.workflow_id != root.workflow_id]
            yield smaller
    for r in range(len(scenario.roots)):
        for n, size in enumerate(len(lst) for lst in _lists(scenario.roots[r].script)):
            for j in range(size):
                smaller = scenario.copy()
                target = _lists(smaller.roots[r].script)[n]
                if len(target) == 1 and target is not smaller.roots[r].script:
                    continue
                del target[j]
                yield smaller


def _lists(node: Any) -> list[list[Any]]:
    """Every list of statements or items in a script, outermost first (a stable order)."""
    found: list[list[Any]] = []
    if isinstance(node, list):
        found.append(node)
        for item in node:
            found += _lists(item)
    elif isinstance(node, dict):
        for key in ("items", "body", "handler", "script"):
            if key in node:
                found += _lists(node[key])
    return found


def shrink(report: Report, invariant: str, budget: int = 300) -> Report:
    """The smallest scenario found that still breaks ``invariant`` (with the seed's faults)."""
    def still_fails(scenario: Scenario) -> Report | None:
        try:
            smaller = run(scenario, report.faults)
        except Ambiguous:
            return None
        return smaller if invariant in smaller.names and not smaller.expected_failure else None

    best = report
    improved = True
    while improved and budget > 0:
        improved = False
        for scenario in candidates(best.scenario):
            budget -= 1
            smaller = still_fails(scenario)
            if smaller is not None:
                best, improved = smaller, True
                break
            if budget <= 0:
                break
    return best


def summary(report: Report) -> str:
    """Each root's end in the plain run next to the reference's."""
    want = reference(report.scenario)
    final = report.base.final_states()
    lines = []
    for root in report.scenario.roots:
        exp = want[root.workflow_id]
        lines.append(f"{root.workflow_id}: engine {invariants.describe_state(final.get(root.workflow_id))}, reference "
                     f"{(exp.status, exp.result if exp.status == 'COMPLETED' else exp.error)}")
    return "\n".join(lines)


def explain(report: Report, invariant: str | None = None, shrink_it: bool = True) -> str:
    """The failing seed, its violations, a minimal scenario and the deliveries of its runs."""
    target = invariant or sorted(report.names)[0]
    small = shrink(report, target) if shrink_it else report
    lines = [f"seed {report.seed} breaks {target}: {invariants.INVARIANTS.get(target, '')}",
             f"  rerun: PULSARFLOW_SIM_SEED={report.seed} .venv/bin/python -m pytest -q -s "
             "tests/sim/test_simulation.py -k sweep",
             f"  faults of the second run: {report.faults}"]
    lines += [f"  - {v}" for v in report.violations]
    lines.append("minimal scenario (roots, then client actions):")
    for root in small.scenario.roots:
        lines.append(f"  {root.workflow_id} starts at {root.start} ms: {json.dumps(root.script)}")
    lines += [f"  {a.at:>6} ms {a.kind} {a.workflow_id} {a.name} {a.arg if a.kind == 'update' else ''}"
              f" ({a.action_id})" for a in small.scenario.actions]
    lines += [f"  - {v}" for v in small.violations if v.invariant == target]
    for label, net in (("plain run", small.base), ("run with faults", small.faulty)):
        if label == "plain run" or target == "duplicates-changed" or any(
                "[with faults]" in v.detail for v in small.violations if v.invariant == target):
            lines += [f"history of the {label}:", net.format_history()]
    return "\n".join(lines)


def sweep(seeds: range, nesting: bool = True, known: dict[int, set[str]] | None = None) -> dict[str, list[int]]:
    """Failing seeds by invariant; seeds the SDK refused nesting for are under NESTING_UNSUPPORTED, and
    seeds of ``known`` that break only the invariants it lists for them under KNOWN_DEFECT."""
    failing: dict[str, list[int]] = {}
    for seed in seeds:
        report = check_seed(seed, nesting)
        if report.expected_failure:
            failing.setdefault(NESTING_UNSUPPORTED, []).append(seed)
            continue
        if report.names and known is not None and report.names <= known.get(seed, set()):
            failing.setdefault(KNOWN_DEFECT, []).append(seed)
            continue
        for name in sorted(report.names):
            failing.setdefault(name, []).append(seed)
    return failing
