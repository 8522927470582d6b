"""A Pulsar Function that runs the StateStore contract checks over its own function state.

Deploy it with a ``userConfig`` naming ``report_topic`` and send it any message: it runs
every check of :mod:`pulsarflow.storage.contract` against ``FunctionStateStore(context)``
under a namespace made from the message (so each run uses fresh keys) and publishes one
JSON report::

    {"backend": "function", "run": "<input text>", "outcomes": [{"check", "status", "detail"}, ...]}

Checks needing compare-and-set or retention report "not applicable".
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from pulsarflow.pulsar.function_state import FunctionStateStore
from pulsarflow.storage.contract import Subject, run_all

try:
    from pulsar import Function
except ImportError:  # pragma: no cover - only inside the Pulsar Functions runtime
    Function = object


def report(context: Any, run: str) -> dict[str, Any]:
    """Run every check over the function's state; the report published for ``run``."""
    subject = Subject(FunctionStateStore(context), namespace=f"contract/{run}/")
    return {"backend": "function", "run": run, "outcomes": [asdict(o) for o in run_all(subject)]}


class StateContractFunction(Function):
    def process(self, input: bytes, context: Any) -> None:
        run = bytes(input).decode("utf-8", "replace").strip() or "run"
        context.get_logger().info("running the state contract checks for run %s", run)
        body = json.dumps(report(context, run)).encode()
        context.publish(context.get_user_config_value("report_topic"), body)
