"""Switches for A/B runs of the Pulsar path, set per function from its userConfig (``bench.ab_pulsar``).

Listed among a benchmark app's modules, it is imported by each function instance while
its handler is built, before the transport is made. Inside an instance it reads the
instance's own FunctionDetails (its ``--function_details`` argument) and applies:

    perf_batched_records: "WorkflowEvent" | ""   records sent through a batching producer
                                                 (pulsarflow.pulsar.transport.BATCHED_RECORDS)
    perf_fast_send: "on" | "off"                 build messages with the native client directly
                                                 (pulsarflow.pulsar.transport.FAST_SEND)
    perf_state_calls: N                          function-state calls in flight at once for a batch
                                                 (pulsarflow.pulsar.function_state.PARALLEL_CALLS)

Imported anywhere else, or without those keys, it changes nothing.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def instance_user_config(argv: list[str]) -> dict[str, Any]:
    if "--function_details" not in argv[:-1]:
        return {}
    details = json.loads(argv[argv.index("--function_details") + 1].strip("'"))
    raw = details.get("userConfig") or "{}"
    return dict(json.loads(raw) if isinstance(raw, str) else raw)


def apply(config: dict[str, Any]) -> None:
    from pulsarflow.pulsar import function_state, transport

    if "perf_batched_records" in config:
        names = str(config["perf_batched_records"])
        transport.BATCHED_RECORDS = frozenset(n for n in names.split(",") if n)
    if "perf_fast_send" in config:
        transport.FAST_SEND = config["perf_fast_send"] == "on"
    if "perf_state_calls" in config:
        function_state.PARALLEL_CALLS = int(config["perf_state_calls"])


if "contextimpl" in sys.modules:  # inside a Python Function instance
    apply(instance_user_config(sys.argv))
