"""pulsarflow and its peers on the same workloads, run back to back in alternating rounds.

    .venv/bin/python -m bench.peers [--rounds 3] [--concurrency 32] [--scale 1.0] [--systems ...]

Prints one JSON line per run, per (case, system) median, per ratio and per target, then a
Markdown table; writes them, the runs' logs and a plot under bench/results/peers-<time>/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import workloads
from bench.peers import harness

ROOT = Path(__file__).resolve().parents[2]
RUN_TIMEOUT_S = 1200


def main() -> None:
    args = _arguments()
    systems = harness.select_systems(args.systems.split(","))
    cases = [(case, max(1, int(workloads.CASES[case][2] * args.scale))) for case in args.cases.split(",")]
    results = args.results or ROOT / "bench" / "results" / time.strftime("peers-%Y%m%d-%H%M%S")
    (results / "logs").mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"machine": _machine(), "concurrency": args.concurrency, "cases": dict(cases),
                              "rounds": args.rounds, "versions": {}, "skipped": {}, "failed": [], "runs": []}
    runs_file = (results / "runs.jsonl").open("w")
    for round_no, name in harness.schedule([s.name for s in systems], args.rounds):
        if name in report["skipped"]:
            continue
        outcome = _run_once(harness.SYSTEMS[name], round_no, cases, args, results)
        for row in outcome.get("rows", []):
            report["runs"].append({"round": round_no, **row})
            _emit({"kind": "run", **report["runs"][-1]}, runs_file)
        if "skipped" in outcome:
            report["skipped"][name] = outcome["skipped"]
            _emit({"kind": "skipped", "system": name, "reason": outcome["skipped"]}, runs_file)
        if "failed" in outcome:
            report["failed"].append({"system": name, "round": round_no, "reason": outcome["failed"]})
            _emit({"kind": "failed", "system": name, "round": round_no, "reason": outcome["failed"]}, runs_file)
        report["versions"].update({name: outcome["versions"]} if "versions" in outcome else {})
    runs_file.close()
    _finish(report, results, args.peers_python)


def _arguments() -> argparse.Namespace:
    defaults = harness.Settings()
    peers_venv = ROOT / ".venv-peers" / "bin" / "python"
    parser = argparse.ArgumentParser(prog="python -m bench.peers", description=__doc__.splitlines()[0])
    parser.add_argument("--systems", default=",".join(harness.SYSTEMS), help="comma-separated, in run order")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32, help="workflows in flight, the same for every system")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the number of workflows of every case")
    parser.add_argument("--cases", default="sequential-3,fanout-10")
    parser.add_argument("--results", type=Path, help="output folder (default bench/results/peers-<time>)")
    parser.add_argument("--peers-python", type=Path,
                        default=peers_venv if peers_venv.exists() else Path(sys.executable),
                        help="interpreter with bench/peers/requirements.txt installed (default .venv-peers)")
    parser.add_argument("--admin-url", default=defaults.admin_url)
    parser.add_argument("--service-url", default=defaults.service_url)
    parser.add_argument("--postgres-url", default=defaults.postgres_url)
    parser.add_argument("--redis-url", default=defaults.redis_url)
    args = parser.parse_args()
    unknown = [c for c in args.cases.split(",") if c not in workloads.CASES]
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; choose among: {', '.join(workloads.CASES)}")
    if args.rounds < 1 or args.concurrency < 1 or args.scale <= 0:
        parser.error("--rounds and --concurrency must be at least 1 and --scale above 0")
    try:
        harness.select_systems(args.systems.split(","))
    except ValueError as exc:
        parser.error(str(exc))
    return args


def _run_once(system: harness.System, round_no: int, cases: list[tuple[str, int]], args: argparse.Namespace,
              results: Path) -> dict[str, Any]:
    """One system's run in a fresh process; what it wrote, or why it failed."""
    python = sys.executable if system.runtime == harness.PROJECT else str(args.peers_python)
    out = results / "logs" / f"{round_no}-{system.name}.json"
    log = results / "logs" / f"{round_no}-{system.name}.log"
    command = [python, "-m", "bench.peers.run", system.name, "--concurrency", str(args.concurrency),
               "--out", str(out), "--admin-url", args.admin_url, "--service-url", args.service_url,
               "--postgres-url", args.postgres_url, "--redis-url", args.redis_url]
    for case, count in cases:
        command += ["--case", f"{case}:{count}"]
    load = os.getloadavg()[0]
    with log.open("w") as sink:
        try:
            code = subprocess.run(command, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT,
                                  timeout=RUN_TIMEOUT_S, env={**os.environ, "PYTHONPATH": str(ROOT)}).returncode
        except subprocess.TimeoutExpired:
            return {"failed": f"no answer within {RUN_TIMEOUT_S} s (log: {log})"}
    if code != 0 or not out.exists():
        tail = log.read_text(errors="replace").strip().splitlines()[-3:]
        return {"failed": f"exit code {code}: {' / '.join(tail)} (log: {log})"}
    outcome: dict[str, Any] = json.loads(out.read_text())
    for row in outcome.get("rows", []):
        row["load_1m_before"] = round(load, 2)
    return outcome


def _emit(row: dict[str, Any], sink: Any) -> None:
    text = json.dumps(row)
    print(text, flush=True)
    sink.write(text + "\n")


def _machine() -> dict[str, Any]:
    cpu = next((line.split(":", 1)[1].strip() for line in _read("/proc/cpuinfo").splitlines()
                if line.startswith("model name")), platform.processor())
    return {"cores": os.cpu_count(), "cpu": cpu, "python": platform.python_version(),
            "system": f"{platform.system()} {platform.release()}", "load_1m_at_start": round(os.getloadavg()[0], 2)}


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _finish(report: dict[str, Any], results: Path, peers_python: Path) -> None:
    report["machine"]["load_1m_at_end"] = round(os.getloadavg()[0], 2)
    report["summary"] = harness.summarize(report["runs"])
    report["comparisons"] = harness.compare(report["summary"])
    for row in report["summary"]:
        print(json.dumps({"kind": "summary", **row}), flush=True)
    for row in report["comparisons"]:
        print(json.dumps({"kind": "target" if "target" in row else "ratio", **row}), flush=True)
    (results / "summary.json").write_text(json.dumps(report, indent=1))
    text = harness.table(report["summary"], report["comparisons"], report["skipped"], report["failed"])
    (results / "table.md").write_text(text + "\n")
    print("\n" + text)
    plot = subprocess.run([str(peers_python), "-m", "bench.peers.plot", str(results / "summary.json"),
                           str(results / "peers.png")], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    if plot.returncode == 0:
        print(f"\nplot: {results / 'peers.png'}")
    else:
        tail = (plot.stderr.strip().splitlines() or ["no output"])[-1]
        print(f"\nplot skipped: {tail} (matplotlib comes with bench/peers/requirements.txt)")
    print(f"results: {results}")


if __name__ == "__main__":
    main()
