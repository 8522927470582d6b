"""Runs one step of the rolling-upgrade test with whichever pulsarflow is first on the path.

    python driver.py deploy APP OUT | start APP FOLDER | signal APP ID | results APP IDS... | roundtrip APP TAG

Only uses what release 0.1.0 and the current release both have. Prints JSON. The workflow
engine keeps its state in Pulsar function state, or in Redis with UPGRADE_STATE=redis.
"""

from __future__ import annotations

import inspect
import json
import os
import sys
from pathlib import Path
from typing import Any

SERVICE_URL = os.environ.get("PULSAR_URL", "pulsar://127.0.0.1:6650")
ADMIN_URL = os.environ.get("PULSAR_ADMIN_URL", "http://127.0.0.1:8080")
MODULE = "upgrade_flows"


def manifest(app: str):  # type: ignore[no-untyped-def]
    from pulsarflow.deploy import manifest as mf

    state = {"state": "redis", "redis_url": os.environ["REDIS_URL"]} if os.environ.get("UPGRADE_STATE") == "redis" \
        else {"state": "function"}
    namespace = os.environ.get("UPGRADE_NAMESPACE", "default")
    functions = [
        {"name": f"{app}-workflow-engine", "engine": "workflow"},
        {"name": f"{app}-tag-engine", "engine": "tag"},
        {"name": f"{app}-executor-default", "engine": "executor", "service": "default"},
    ]
    return mf.parse({"namespace": namespace, "app": app, "modules": [MODULE], "bundle_library": True, **state,
                     "functions": functions})


def client(app: str):  # type: ignore[no-untyped-def]
    from pulsarflow.worker import connect

    return connect(SERVICE_URL, modules=[MODULE], topics=manifest(app).topics)


def main(argv: list[str]) -> None:
    import pulsarflow

    action, app = argv[0], argv[1]
    where = str(Path(pulsarflow.__file__).resolve().parent)
    if action == "deploy":
        from pulsarflow.deploy import tool
        from pulsarflow.deploy.admin import PulsarAdmin

        # Releases after 0.2.0 enforce schemas on the namespace unless told not to: 0.1.0 clients attach none.
        keep_schemaless: dict[str, Any] = {"schema_validation": False} if "schema_validation" in inspect.signature(
            tool.apply).parameters else {}
        report = tool.apply(PulsarAdmin(ADMIN_URL), manifest(app), Path(argv[2]), **keep_schemaless)
        print(json.dumps({"library": where, "report": [str(r) for r in report]}))
        return
    import upgrade_flows as flows

    c = client(app)
    try:
        if action == "start":
            folder = Path(argv[2])
            ids = {"sleeper": f"{app}-sleeper", "waiter": f"{app}-waiter", "mid_task": f"{app}-mid",
                   "retrying": f"{app}-retry"}
            c.start(flows.sleeper, 25.0, id=ids["sleeper"])
            c.start(flows.waiter, id=ids["waiter"])
            c.start(flows.mid_task, str(folder / "slow"), 12.0, id=ids["mid_task"])
            c.start(flows.retrying, str(folder / "retries"), id=ids["retrying"])
            print(json.dumps({"library": where, "ids": ids}))
        elif action == "roundtrip":  # start a workflow and wait for its result
            handle = c.start(flows.sleeper, 1.0, id=f"{app}-roundtrip-{argv[2]}")
            print(json.dumps({"library": where, "result": handle.result(timeout=120)}))
        elif action == "signal":
            c.signal(argv[2], "go", "after the upgrade", timeout=180)  # the engines may still be starting
            print(json.dumps({"library": where}))
        elif action == "results":
            print(json.dumps({"library": where,
                              "results": {i: c.get_handle(i).result(timeout=150) for i in argv[2:]}}))
    finally:
        c.connection.close()


if __name__ == "__main__":
    main(sys.argv[1:])
