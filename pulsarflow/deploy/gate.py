"""The replay gate: the histories of the running workflows replayed with the code about to be deployed.

``pulsarflow deploy apply`` runs it before it uploads anything, and ``pulsarflow replay
check --live`` runs it alone. Each running workflow's stored history (see
:mod:`pulsarflow.deploy.running` for how they are found) is replayed with the new code by
:func:`pulsarflow.replaycheck.check`; a run whose history the new code does not reproduce
would be blocked by the deploy (see docs/workflows.md, "Blocked runs"), so the gate
refuses and prints each one with its first divergence. A run it could not read (its state
does not decode, or its read failed) refuses too: the gate cannot vouch for it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pulsarflow import replaycheck
from pulsarflow.deploy.live import LiveSource
from pulsarflow.deploy.running import LiveRuns, collect
from pulsarflow.interpreter.registry import Registry
from pulsarflow.messages import WorkflowState
from pulsarflow.replaycheck import ReplayResult

ADVICE = ("guard the change with ctx.patched(...) (docs/workflows.md, \"Versioning running workflows\"), "
          "or deploy anyway with --force")
NOTHING_DEPLOYED = "no deployed workflow engine"


@dataclass(frozen=True)
class GateOptions:
    sample: int | None = None  # replay this many running workflows (a deterministic sample); None: all
    force: bool = False  # deploy even when the gate refuses
    skip: bool = False  # do not run the gate at all


@dataclass
class GateReport:
    runs: LiveRuns
    results: list[ReplayResult]
    blocked: dict[str, str]  # workflow id -> why it is blocked already

    @property
    def diverging(self) -> list[ReplayResult]:
        return [r for r in self.results if not r.ok]

    @property
    def ok(self) -> bool:
        return not self.diverging and not self.runs.unreadable

    def lines(self) -> list[str]:
        diverging = sorted(self.diverging, key=lambda r: r.workflow_id)
        out = [f"{r.describe()}{self._blocked_note(r.workflow_id)}" for r in diverging]
        out += [f"UNREAD   {wid}: {why}" for wid, why in sorted(self.runs.unreadable)]
        out += [f"note: {note}" for note in self.runs.notes]
        return [*out, self.summary()]

    def summary(self) -> str:
        runs = self.runs
        if runs.where == NOTHING_DEPLOYED:
            return "replay check: no workflow engine deployed, so no running workflow to replay"
        scope = f"a sample of {runs.sample} asked" if runs.sample is not None else "all"
        found = (f"{len(self.results)} running workflow(s) replayed with the new code ({scope}; "
                 f"{runs.candidates} candidate id(s) from {runs.where})")
        verdict = f"{len(self.diverging)} diverging, {len(runs.unreadable)} unreadable"
        return f"replay check: {found}: {verdict}"

    def json_lines(self) -> list[str]:
        rows = [json.dumps(r.__dict__) for r in self.results]
        rows += [json.dumps({"workflow_id": wid, "ok": False, "unreadable": why}) for wid, why in self.runs.unreadable]
        return rows

    def _blocked_note(self, workflow_id: str) -> str:
        why = self.blocked.get(workflow_id)
        return f" (blocked already: {why})" if why else ""


def check_runs(runs: LiveRuns, registry: Registry) -> GateReport:
    """Replay every collected history with ``registry``'s code."""
    results = replaycheck.check_all(runs.states, registry)
    return GateReport(runs, results, _blocked(runs.states))


def check_source(source: LiveSource, registry: Registry, sample: int | None = None) -> GateReport:
    """Find the running workflows of ``source`` and replay them; nothing running gives an empty report."""
    if source.index is None or source.store is None:
        return GateReport(LiveRuns(NOTHING_DEPLOYED, notes=list(source.notes), sample=sample), [], {})
    runs = collect(source.index, source.store, sample=sample)
    runs.notes += source.notes
    return check_runs(runs, registry)


def _blocked(states: Iterable[WorkflowState]) -> dict[str, str]:
    return {s.workflow_id: f"step {s.blocked.position}: {s.blocked.reason.describe()}"
            for s in states if s.blocked is not None}


def import_path(paths: Iterable[Path]) -> None:
    """Put ``paths`` first on the import path, where the user's modules are looked for."""
    for path in reversed([str(Path(p).resolve()) for p in paths]):
        if path not in sys.path:
            sys.path.insert(0, path)


def new_code(modules: list[str]) -> Registry:
    """The registry of the user's ``modules``: the code about to be deployed.

    Import them in a fresh process (the CLI does): a module imported earlier by the same
    process is not read again.
    """
    from pulsarflow.usercode import load_registry

    return load_registry(modules)
