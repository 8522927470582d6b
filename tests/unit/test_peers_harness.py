"""The peers comparison's own logic (bench/peers), without any peer installed."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from bench import workloads
from bench.peers import harness, run
from bench.peers.closed_loop import closed_loop

ROOT = Path(__file__).resolve().parents[2]


def test_cases_parse_to_the_shapes_of_the_project_workloads() -> None:
    for case, (wf, tasks, _) in workloads.CASES.items():
        kind, parsed = harness.parse_case(case)
        assert parsed == tasks
        assert wf.__name__ == kind


@pytest.mark.parametrize("case", ["sequential", "fanout-0", "chain-3", "sequential-3x", ""])
def test_a_bad_case_says_what_is_expected(case: str) -> None:
    with pytest.raises(ValueError, match="expected 'sequential-N' or 'fanout-N'"):
        harness.parse_case(case)


def test_expected_result_is_the_sum_of_task_indexes() -> None:
    assert [harness.expected_result(n) for n in (1, 3, 10)] == [sum(range(1)), sum(range(3)), sum(range(10))]


def test_schedule_alternates_systems_round_by_round() -> None:
    assert harness.schedule(["a", "b", "c"], 2) == [(1, "a"), (1, "b"), (1, "c"), (2, "a"), (2, "b"), (2, "c")]
    with pytest.raises(ValueError, match="at least 1"):
        harness.schedule(["a"], 0)


def test_an_unknown_system_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="pulsarflow-embedded"):
        harness.select_systems(["pulsarflow-embedded", "airflow"])
    with pytest.raises(ValueError, match="named twice"):
        harness.select_systems(["temporal", "dbos-sqlite", "temporal"])


def _row(case: str, system: str, rate: float, p50: float, p99: float) -> dict[str, Any]:
    return {"case": case, "system": system, "workflows": 100, "workflows_per_s": rate, "p50_ms": p50, "p99_ms": p99}


def test_summary_takes_medians_and_keeps_the_spread() -> None:
    rows = [_row("sequential-3", "temporal", r, p, 2 * p) for r, p in [(10, 100), (30, 300), (20, 200)]]
    (summary,) = harness.summarize(rows)
    assert summary["rounds"] == 3
    assert (summary["workflows_per_s"], summary["workflows_per_s_min"], summary["workflows_per_s_max"]) == (20, 10, 30)
    assert (summary["p50_ms"], summary["p99_ms"]) == (200, 400)


def test_ratios_and_targets_against_the_fastest_peer() -> None:
    summary = harness.summarize([
        _row("fanout-10", "pulsarflow-embedded", 300, 10, 20),
        _row("fanout-10", "pulsarflow-pulsar", 50, 400, 800),
        _row("fanout-10", "temporal", 100, 200, 400),
        _row("fanout-10", "dbos-sqlite", 160, 100, 200),
    ])
    comparisons = harness.compare(summary)
    ratio = next(c for c in comparisons if c.get("peer") == "dbos-sqlite" and c["pulsarflow"] == "pulsarflow-pulsar")
    assert (ratio["throughput_ratio"], ratio["p50_ratio"], ratio["p99_ratio"]) == (0.31, 4.0, 4.0)
    targets = {c["pulsarflow"]: c for c in comparisons if "target" in c}
    assert targets["pulsarflow-embedded"]["fastest_peer"] == "dbos-sqlite"
    assert (targets["pulsarflow-embedded"]["ratio"], targets["pulsarflow-embedded"]["met"]) == (1.88, False)
    assert (targets["pulsarflow-pulsar"]["ratio"], targets["pulsarflow-pulsar"]["met"]) == (0.31, False)
    text = harness.table(summary, comparisons, {"dbos-postgres": "no PostgreSQL at ..."},
                         [{"system": "temporal", "round": 2, "reason": "exit code 1"}])
    assert "| fanout-10 | pulsarflow-embedded | dbos-sqlite | 1.88 | 2.0 | no |" in text
    assert "\n\n- dbos-postgres: skipped: no PostgreSQL at ...\n- temporal: round 2 failed: exit code 1" in text


def test_no_target_without_a_peer() -> None:
    assert harness.compare(harness.summarize([_row("fanout-10", "pulsarflow-embedded", 300, 10, 20)])) == []


def test_closed_loop_keeps_concurrency_in_flight_and_counts_every_workflow() -> None:
    in_flight, peak, calls = 0, 0, []

    async def execute(kind: str, tasks: int) -> int:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        calls.append((kind, tasks))
        await asyncio.sleep(0.001)
        in_flight -= 1
        return harness.expected_result(tasks)

    seconds, latencies = asyncio.run(closed_loop(execute, "fanout-10", 23, 4))
    assert len(latencies) == 23 and seconds > 0
    assert calls == [("fanout", 10)] * 23
    assert peak == 4


def test_closed_loop_refuses_a_wrong_result() -> None:
    async def execute(kind: str, tasks: int) -> int:
        return -1

    with pytest.raises(RuntimeError, match="returned -1, expected 3"):
        asyncio.run(closed_loop(execute, "sequential-3", 2, 1))


def test_case_counts_on_the_command_line() -> None:
    assert run.parse_case_count("fanout-10:200") == ("fanout-10", 200)
    for bad in ("fanout-10", "fanout-10:0", "fanout-10:x", "pipeline-3:5"):
        with pytest.raises(Exception, match="expected"):
            run.parse_case_count(bad)


def test_run_system_reports_a_skip_with_its_reason_or_tags_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = types.ModuleType("bench.peers.systems.fake")
    reason: list[str | None] = ["not here: install it"]
    fake.unavailable = lambda settings, variant: reason[0]  # type: ignore[attr-defined]
    fake.versions = lambda settings, variant: {"fake": variant}  # type: ignore[attr-defined]
    fake.run = lambda cases, concurrency, settings, variant: [{"case": c, "n": n} for c, n in cases]  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "bench.peers.systems.fake", fake)
    monkeypatch.setitem(harness.SYSTEMS, "fake", harness.System("fake", harness.PEERS, "fake", "a fake", "v1"))
    settings = harness.Settings()
    assert run.run_system("fake", [("sequential-3", 5)], 2, settings) == {"system": "fake",
                                                                          "skipped": "not here: install it"}
    reason[0] = None
    assert run.run_system("fake", [("sequential-3", 5)], 2, settings) == {
        "system": "fake", "versions": {"fake": "v1"}, "rows": [{"case": "sequential-3", "n": 5, "system": "fake"}]}


def test_one_command_runs_alternating_rounds_and_reports_skipped_peers(tmp_path: Path) -> None:
    results = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, "-m", "bench.peers", "--systems", "pulsarflow-embedded,dbos-postgres", "--rounds", "2",
         "--scale", "0.01", "--concurrency", "4", "--results", str(results), "--peers-python", sys.executable,
         "--postgres-url", "postgresql://nobody:x@127.0.0.1:1/none"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(t) for t in done.stdout.splitlines() if t.startswith("{")]
    runs = [(r["round"], r["case"]) for r in lines if r["kind"] == "run"]
    assert runs == [(1, "sequential-3"), (1, "fanout-10"), (2, "sequential-3"), (2, "fanout-10")]
    (skip,) = [r for r in lines if r["kind"] == "skipped"]
    assert skip["system"] == "dbos-postgres" and skip["reason"]
    assert f"- dbos-postgres: skipped: {skip['reason']}" in done.stdout
    report = json.loads((results / "summary.json").read_text())
    assert {(r["case"], r["system"], r["rounds"]) for r in report["summary"]} == {
        ("sequential-3", "pulsarflow-embedded", 2), ("fanout-10", "pulsarflow-embedded", 2)}
    assert report["versions"]["pulsarflow-embedded"]["pulsarflow"]


def test_targets_by_system_and_case() -> None:
    summary = harness.summarize([
        _row("sequential-3", "pulsarflow-embedded", 3100, 10, 20),
        _row("sequential-3", "pulsarflow-pulsar-redis", 390, 50, 90),
        _row("sequential-3", "dbos-postgres", 100, 200, 400),
    ])
    targets = {c["pulsarflow"]: c for c in harness.compare(summary) if "target" in c}
    assert (targets["pulsarflow-embedded"]["required"], targets["pulsarflow-embedded"]["met"]) == (30.0, True)
    assert (targets["pulsarflow-pulsar-redis"]["required"], targets["pulsarflow-pulsar-redis"]["met"]) == (4.0, False)
    assert harness.target("pulsarflow-pulsar", "fanout-10") == 5.0
    assert harness.target("pulsarflow-pulsar-workers", "sequential-3") == 1.0
    assert harness.target("dbos-postgres", "sequential-3") is None
