"""Poison messages on a real standalone: each kind is dead-lettered at once with its reason, the
letters fit, nothing is sent where a message asked, and the rest of the load is not held back.

The workflow engine runs batched (``batch: 20``, as functions.yaml ships it); the letters are
read back through ``pulsarflow deadletters``' subscription, and the CLI is run against them.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
import requests

from pulsarflow import cli_deadletters
from pulsarflow.codec import HEADER_SIZE, Codec
from pulsarflow.messages import DeadLetter, GetWorkflowStatus, ReplyTo, StartWorkflow, WorkflowEngineMessage
from tests.e2e import flows
from tests.integration.conftest import ADMIN_URL, SERVICE_URL, connected, deployed_app

pytestmark = pytest.mark.pulsar
MODULE = "tests.e2e.flows"
CODEC = Codec()
TIMEOUT = 120
HUGE = 5_230_000  # close to the broker's 5,242,880: the letter cannot hold it whole


@pytest.fixture(scope="module")
def app(pulsar_admin, tmp_path_factory):  # type: ignore[no-untyped-def]
    functions: list[dict[str, Any]] = [{"name": "{app}-workflow-engine", "engine": "workflow", "batch": 20},
                 {"name": "{app}-executor-default", "engine": "executor", "service": "default"}]
    with deployed_app(pulsar_admin, tmp_path_factory.mktemp("poison"), [MODULE], functions,
                      prefix="poison") as manifest:
        yield manifest


def dead_letters(topics: Any, count: int, timeout: float) -> list[tuple[str, DeadLetter]]:
    """The app's dead letters once there are ``count`` of them (read without consuming them)."""
    import pulsar

    from pulsarflow.pulsar.deadletters import PulsarDeadLetters

    deadline = time.monotonic() + timeout
    while True:
        client = pulsar.Client(SERVICE_URL)
        try:
            reader = PulsarDeadLetters(client, topics.dead_letters)
            found = list(reader.letters())
            reader.close()
        finally:
            client.close()
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(1)


def poisons(topics: Any, stolen: str) -> dict[str, bytes]:
    reply = ReplyTo(topics.client("poison-tests"), "r")
    unknown_branch = bytearray(CODEC.encode(WorkflowEngineMessage("id", "wf", 1, GetWorkflowStatus(reply))))
    unknown_branch[HEADER_SIZE + 7] = 60  # the union index of ``message``: a branch this release does not have
    return {
        "undecodable": b"not a pulsarflow message",
        "huge": b"\x02" + bytes(HUGE - 1),
        "long-id": CODEC.encode(WorkflowEngineMessage("m", "w" * 10_000, 0, StartWorkflow("sequence", b"[1]",
                                                                                           reply=reply))),
        "stolen-reply": CODEC.encode(WorkflowEngineMessage("m", "wf-steal", 0, StartWorkflow(
            "sequence", b"[1]", reply=ReplyTo(stolen, "r")))),
        "newer-release": bytes(unknown_branch),
    }


def test_each_poison_is_dead_lettered_with_its_reason_and_the_load_goes_on(app) -> None:  # type: ignore[no-untyped-def]
    import pulsar

    from pulsarflow.pulsar.transport import WireSchema

    topics = app.topics
    stolen = f"persistent://public/default/stolen-{uuid.uuid4().hex[:8]}"
    raw = pulsar.Client(SERVICE_URL)
    with connected(topics, (MODULE,)) as client:
        assert client.start(flows.sequence, 2).result(timeout=TIMEOUT) == 1  # engines up
        # The namespace refuses producers without a schema: the poisons come from one that attaches
        # the topic's schema and sends bytes that do not fit it, as a broken producer would.
        producer = raw.create_producer(topics.workflow_engine, batching_enabled=False,
                                       schema=WireSchema(CODEC.wire_schema("WorkflowEngineMessage")))
        started = time.monotonic()
        for name, payload in poisons(topics, stolen).items():
            producer.send(payload, partition_key=name)
        handles = [client.start(flows.sequence, 3) for _ in range(10)]
        assert [h.result(timeout=TIMEOUT) for h in handles] == [3] * 10
        load_done = time.monotonic() - started
    raw.close()
    letters = {letter.key or letter.reason[:30]: letter for _, letter in dead_letters(topics, 5, 60)}
    assert len(letters) == 5, list(letters)
    reasons = "\n".join(f"{letter.kind}: {letter.reason}" for letter in letters.values())
    assert "undecodable: cannot decode 24 bytes as WorkflowEngineMessage" in reasons
    assert f"the first 65,536 of {HUGE:,} bytes are kept" in reasons
    assert "has 10,000 characters; at most 2,000 are allowed" in reasons
    assert f"reply topic '{stolen}' of this WorkflowEngineMessage is not a client topic" in reasons
    assert "unknown union branch 30 in WorkflowEngineMessage.message" in reasons
    assert all(letter.attempts == 1 for letter in letters.values())
    never_created = requests.get(f"{ADMIN_URL}/admin/v2/{stolen.replace('://', '/')}/stats", timeout=10)
    assert never_created.status_code == 404, "something was published to the topic the message named"
    print(json.dumps({"case": "poison", "letters": len(letters), "load_seconds": round(load_done, 2)}))


def test_the_cli_lists_shows_and_replays_letters_on_pulsar(app, capsys) -> None:  # type: ignore[no-untyped-def]
    topics = app.topics
    found = dead_letters(topics, 5, 60)
    options = ["--service-url", SERVICE_URL, "--app", topics.app]
    assert cli_deadletters.main(["list", "--json", *options]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {row["id"] for row in listed} == {ident for ident, _ in found}
    refused = next(ident for ident, letter in found if "reply topic" in letter.reason)
    assert cli_deadletters.main(["show", refused, *options]) == 0
    assert "StartWorkflow(workflow_name='sequence'" in capsys.readouterr().out
    assert cli_deadletters.main(["replay", refused, *options]) == 1  # refused before: not without --force
    assert "it was refused" in capsys.readouterr().err
    assert cli_deadletters.main(["replay", refused, "--force", *options]) == 0
    assert "replayed to" in capsys.readouterr().out
    after = dead_letters(topics, 5, 60)  # the replayed one is refused again: a new letter replaces it
    assert refused not in {ident for ident, _ in after}
    assert sum("reply topic" in letter.reason for _, letter in after) == 1
