"""One run of one system, in a process of its own (started by ``python -m bench.peers``).

    python -m bench.peers.run SYSTEM --case sequential-3:1000 --case fanout-10:200 --concurrency 32 --out FILE

Writes ``{"system": ..., "versions": {...}, "rows": [...]}`` to FILE, or ``{"system": ..., "skipped": reason}``
when the system cannot run here; its figures also go to stdout as JSON lines.
"""

from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path
from typing import Any

from bench.peers.harness import SYSTEMS, Settings, parse_case


def parse_case_count(text: str) -> tuple[str, int]:
    """'sequential-3:1000' -> ('sequential-3', 1000)."""
    case, sep, count = text.partition(":")
    if not sep or not count.isdigit() or int(count) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected CASE:WORKFLOWS, e.g. sequential-3:1000")
    try:
        parse_case(case)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    return case, int(count)


def run_system(name: str, cases: list[tuple[str, int]], concurrency: int, settings: Settings) -> dict[str, Any]:
    system = SYSTEMS[name]
    module = importlib.import_module(f"bench.peers.systems.{system.module}")
    kwargs = {"variant": system.variant} if system.variant else {}
    reason = module.unavailable(settings, **kwargs)
    if reason:
        return {"system": name, "skipped": reason}
    versions = module.versions(settings, **kwargs)
    rows = module.run(cases, concurrency, settings, **kwargs)
    return {"system": name, "versions": versions, "rows": [{**row, "system": name} for row in rows]}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.peers.run", description=__doc__.splitlines()[0])
    parser.add_argument("system", choices=list(SYSTEMS))
    parser.add_argument("--case", type=parse_case_count, action="append", required=True, dest="cases")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--out", type=Path, required=True)
    defaults = Settings()
    parser.add_argument("--admin-url", default=defaults.admin_url)
    parser.add_argument("--service-url", default=defaults.service_url)
    parser.add_argument("--postgres-url", default=defaults.postgres_url)
    parser.add_argument("--redis-url", default=defaults.redis_url)
    args = parser.parse_args()
    settings = Settings(args.admin_url, args.service_url, args.postgres_url, args.redis_url)
    result = run_system(args.system, args.cases, args.concurrency, settings)
    args.out.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
