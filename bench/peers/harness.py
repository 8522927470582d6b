"""The comparison's logic, free of any engine: systems, run order, medians, ratios, table.

Imported by the orchestrator (project venv) and by every system run (either venv), so it
imports nothing beyond the standard library.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

PROJECT = "project"  # runs in the project's venv: pulsarflow and its Pulsar client
PEERS = "peers"  # runs in the peers' venv (bench/peers/requirements.txt)


@dataclass(frozen=True)
class System:
    name: str
    runtime: str  # PROJECT or PEERS
    module: str  # under bench.peers.systems; exposes unavailable(settings) and run(cases, concurrency, settings)
    description: str
    variant: str | None = None  # passed on as variant= when a module serves several systems


SYSTEMS: dict[str, System] = {s.name: s for s in [
    System("pulsarflow-embedded", PROJECT, "pulsarflow_embedded", "pulsarflow, embedded runtime, one process"),
    System("pulsarflow-pulsar", PROJECT, "pulsarflow_pulsar",
           "pulsarflow, engines as Pulsar Functions (batch 100) on the local standalone, function state",
           "function"),
    System("pulsarflow-pulsar-redis", PROJECT, "pulsarflow_pulsar",
           "pulsarflow, engines as Pulsar Functions (batch 100) on the local standalone, state in a local Redis",
           "redis"),
    System("pulsarflow-pulsar-workers", PROJECT, "pulsarflow_pulsar",
           "pulsarflow on the local standalone, engines in batched worker processes, state in a local Redis",
           "workers"),
    System("temporal", PEERS, "temporal_app", "Temporal Python SDK, worker in-process, CLI dev server (SQLite)"),
    System("dbos-sqlite", PEERS, "dbos_app", "DBOS Transact, async workflows, SQLite system database", "sqlite"),
    System("dbos-postgres", PEERS, "dbos_app", "DBOS Transact, async workflows, PostgreSQL system database",
           "postgres"),
    System("restate", PEERS, "restate_app",
           "Restate Python SDK, durable steps (ctx.run), service in-process (Hypercorn), restate-server from npm"),
]}

# What the project asks of pulsarflow, as a multiple of the fastest peer's throughput, by
# system and case ("*": the cases not named). Embedded sequential-3 30x, the Functions 3x on
# function state and 4x on Redis state on sequential-3, and fanout-10 on Pulsar 5x; the
# earlier floor (2x embedded, 1x on Pulsar) for the rest.
TARGETS: dict[str, dict[str, float]] = {
    "pulsarflow-embedded": {"sequential-3": 30.0, "*": 2.0},
    "pulsarflow-pulsar": {"sequential-3": 3.0, "fanout-10": 5.0, "*": 1.0},
    "pulsarflow-pulsar-redis": {"sequential-3": 4.0, "fanout-10": 5.0, "*": 1.0},
    "pulsarflow-pulsar-workers": {"fanout-10": 5.0, "*": 1.0},
}


def target(system: str, case: str) -> float | None:
    """The throughput multiple asked of ``system`` on ``case`` (None: none asked)."""
    asked = TARGETS.get(system)
    return None if asked is None else asked.get(case, asked["*"])


@dataclass(frozen=True)
class Settings:
    """Where the servers some systems need are found."""

    admin_url: str = "http://127.0.0.1:8080"
    service_url: str = "pulsar://127.0.0.1:6650"
    postgres_url: str = "postgresql://postgres:pulsarflow@127.0.0.1:5432/postgres"
    redis_url: str = "redis://127.0.0.1:6379/0"


_CASE = re.compile(r"^(sequential|fanout)-([1-9][0-9]*)$")


def parse_case(case: str) -> tuple[str, int]:
    """'sequential-3' -> ('sequential', 3): the workload's shape and its tasks per workflow."""
    match = _CASE.match(case)
    if not match:
        raise ValueError(f"unknown case {case!r}: expected 'sequential-N' or 'fanout-N' with N >= 1, "
                         "e.g. 'sequential-3' or 'fanout-10'")
    return match.group(1), int(match.group(2))


def expected_result(tasks: int) -> int:
    """Every workload's no-op task returns its index, and every workflow returns their sum."""
    return tasks * (tasks - 1) // 2


def select_systems(names: Iterable[str]) -> list[System]:
    chosen = []
    for name in names:
        if name not in SYSTEMS:
            raise ValueError(f"unknown system {name!r}; choose among: {', '.join(SYSTEMS)}")
        if SYSTEMS[name] in chosen:
            raise ValueError(f"system {name!r} is named twice; name each system once (rounds repeat them)")
        chosen.append(SYSTEMS[name])
    return chosen


def schedule(systems: list[str], rounds: int) -> list[tuple[int, str]]:
    """Runs in the order they happen: every system once per round, rounds back to back (A,B,C,A,B,C)."""
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}")
    return [(r, name) for r in range(1, rounds + 1) for name in systems]


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (case, system): medians over the rounds, and the spread of throughput."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["case"], row["system"]), []).append(row)
    summary = []
    for (case, system), runs in groups.items():
        throughputs = [r["workflows_per_s"] for r in runs]
        summary.append({
            "case": case, "system": system, "rounds": len(runs), "workflows": runs[0]["workflows"],
            "workflows_per_s": round(statistics.median(throughputs), 1),
            "workflows_per_s_min": min(throughputs), "workflows_per_s_max": max(throughputs),
            "p50_ms": round(statistics.median(r["p50_ms"] for r in runs), 2),
            "p99_ms": round(statistics.median(r["p99_ms"] for r in runs), 2),
        })
    return summary


def compare(summary: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """pulsarflow against each peer, per case: throughput ratio (>1: pulsarflow does more per
    second) and latency ratios (<1: pulsarflow answers sooner); then the target per mode."""
    by_case: dict[str, dict[str, dict[str, Any]]] = {}
    for row in summary:
        by_case.setdefault(row["case"], {})[row["system"]] = row
    out = []
    for case, systems in by_case.items():
        ours = {n: r for n, r in systems.items() if SYSTEMS[n].runtime == PROJECT}
        peers = {n: r for n, r in systems.items() if SYSTEMS[n].runtime == PEERS}
        for name, mine in ours.items():
            for peer, theirs in peers.items():
                out.append({
                    "case": case, "pulsarflow": name, "peer": peer,
                    "throughput_ratio": _ratio(mine["workflows_per_s"], theirs["workflows_per_s"]),
                    "p50_ratio": _ratio(mine["p50_ms"], theirs["p50_ms"]),
                    "p99_ratio": _ratio(mine["p99_ms"], theirs["p99_ms"]),
                })
            required = target(name, case)
            if peers and required is not None:
                fastest = max(peers.values(), key=lambda r: r["workflows_per_s"])
                ratio = _ratio(mine["workflows_per_s"], fastest["workflows_per_s"])
                out.append({"case": case, "pulsarflow": name, "target": "throughput",
                            "fastest_peer": fastest["system"], "ratio": ratio,
                            "required": required, "met": ratio is not None and ratio >= required})
    return out


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or not b:
        return None
    return round(a / b, 2)


def table(summary: list[dict[str, Any]], comparisons: list[dict[str, Any]],
          skipped: dict[str, str], failed: Sequence[dict[str, Any]] = ()) -> str:
    """The figures as Markdown, ready for docs/peers.md."""
    lines = ["| case | system | rounds | workflows | workflows/s (median) | min-max | p50 ms | p99 ms |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in sorted(summary, key=lambda r: (r["case"], -r["workflows_per_s"])):
        lines.append(f"| {r['case']} | {r['system']} | {r['rounds']} | {r['workflows']} | {r['workflows_per_s']} "
                     f"| {r['workflows_per_s_min']}-{r['workflows_per_s_max']} | {r['p50_ms']} | {r['p99_ms']} |")
    ratios = [c for c in comparisons if "peer" in c]
    if ratios:
        lines += ["", "| case | pulsarflow | peer | throughput x | p50 x | p99 x |",
                  "| --- | --- | --- | --- | --- | --- |"]
        lines += [f"| {c['case']} | {c['pulsarflow']} | {c['peer']} | {c['throughput_ratio']} | {c['p50_ratio']} "
                  f"| {c['p99_ratio']} |" for c in ratios]
    targets = [c for c in comparisons if "target" in c]
    if targets:
        lines += ["", "| case | pulsarflow | fastest peer | throughput x | required | met |",
                  "| --- | --- | --- | --- | --- | --- |"]
        lines += [f"| {c['case']} | {c['pulsarflow']} | {c['fastest_peer']} | {c['ratio']} | {c['required']} "
                  f"| {'yes' if c['met'] else 'no'} |" for c in targets]
    notes = [f"- {name}: skipped: {reason}" for name, reason in skipped.items()]
    notes += [f"- {f['system']}: round {f['round']} failed: {f['reason']}" for f in failed]
    if notes:
        lines += [""] + notes
    return "\n".join(lines)
