"""pulsarflow's embedded runtime, measured by bench.embedded itself."""

from __future__ import annotations

from typing import Any

import pulsarflow
from bench import embedded
from bench.peers.harness import Settings


def unavailable(settings: Settings) -> str | None:
    return None


def versions(settings: Settings) -> dict[str, str]:
    return {"pulsarflow": pulsarflow.__version__}


def run(cases: list[tuple[str, int]], concurrency: int, settings: Settings) -> list[dict[str, Any]]:
    embedded.run_case("sequential-1", 5, 1)  # warm-up, as every system gets
    return [embedded.run_case(case, workflows, concurrency) for case, workflows in cases]
