"""The StateStore contract checks, run inside a real Pulsar Function over its own function state.

The function (pulsarflow.pulsar.contract_function) runs every check of
pulsarflow.storage.contract when it gets a message and publishes a JSON report. Function
state has no compare-and-set and no expiry: those checks must say "not applicable".
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from pulsarflow.storage.contract import CHECKS, FAILED, NOT_APPLICABLE, PASSED
from tests.integration.conftest import SERVICE_URL

pytestmark = pytest.mark.pulsar
TENANT, NAMESPACE = "public", "default"
WITHOUT_CAS_OR_EXPIRY = {"stale_write_is_refused", "racing_writers_lose_no_update", "finished_values_expire"}


def function_config(name: str, source: str, report_topic: str, package: str) -> dict[str, object]:
    return {
        "tenant": TENANT, "namespace": NAMESPACE, "name": name, "runtime": "PYTHON",
        "className": "state_contract.StateContractFunction", "py": package,
        "customSerdeInputs": {source: "pulsarflow.pulsar.function.RawBytesSerDe"},
        "subscriptionPosition": "Earliest", "processingGuarantees": "ATLEAST_ONCE", "autoAck": True,
        "parallelism": 1, "userConfig": {"report_topic": report_topic},
    }


@pytest.fixture
def contract_report(pulsar_admin, tmp_path: Path):  # type: ignore[no-untyped-def]
    import pulsar

    name = f"state-contract-{uuid.uuid4().hex[:6]}"
    source = f"persistent://{TENANT}/{NAMESPACE}/{name}-in"
    report_topic = f"persistent://{TENANT}/{NAMESPACE}/{name}-report"
    # The class is imported from the pulsarflow installed beside the functions runtime.
    stub = tmp_path / "state_contract.py"
    stub.write_text("from pulsarflow.pulsar.contract_function import StateContractFunction  # noqa: F401\n")
    client = pulsar.Client(SERVICE_URL)
    try:
        consumer = client.subscribe(report_topic, "test", initial_position=pulsar.InitialPosition.Earliest)
        pulsar_admin.create_or_update(function_config(name, source, report_topic, stub.name), stub)
        run = uuid.uuid4().hex[:8]
        client.create_producer(source).send(run.encode())
        message = consumer.receive(timeout_millis=180_000)
        yield run, json.loads(message.data())
    finally:
        pulsar_admin.delete_function(TENANT, NAMESPACE, name)
        client.close()


def test_every_applicable_check_passes_on_function_state(contract_report) -> None:  # type: ignore[no-untyped-def]
    run, report = contract_report
    assert (report["backend"], report["run"]) == ("function", run)
    outcomes = {o["check"]: o for o in report["outcomes"]}
    assert set(outcomes) == set(CHECKS)
    failed = {name: o["detail"] for name, o in outcomes.items() if o["status"] == FAILED}
    assert not failed, f"function state broke the contract: {failed}"
    not_applicable = {name for name, o in outcomes.items() if o["status"] == NOT_APPLICABLE}
    assert not_applicable == WITHOUT_CAS_OR_EXPIRY
    assert all(outcomes[n]["status"] == PASSED for n in set(CHECKS) - WITHOUT_CAS_OR_EXPIRY)
