"""What the fault tests assert after a kill, in one place: no loss, recorded outcomes kept.

A step is *recorded* once the workflow's stored state holds its outcome (the token of
the execution it came from, see fault_flows.record). After the kill every workflow must
finish with all its steps, each step's token must be one that really ran (the journal),
and a step recorded before the kill must keep the very token it had.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from pulsarflow.codec import Codec
from pulsarflow.converter import JsonConverter, decode_one
from pulsarflow.messages import WorkflowState
from pulsarflow.storage import StateStore


def executions(journal: Path, since: int = 0) -> dict[tuple[str, int], list[dict[str, Any]]]:
    """Journal entries by (workflow id, step position), only those written after byte ``since``."""
    by_step: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    if not journal.exists():
        return by_step
    with journal.open("rb") as handle:
        handle.seek(since)
        for line in handle.read().decode().splitlines():
            entry = json.loads(line)
            by_step[(str(entry["workflow"]), int(entry["position"]))].append(entry)
    return by_step


def recorded_tokens(store: StateStore, workflow_ids: list[str]) -> dict[str, dict[int, str]]:
    """For each workflow, the steps whose outcome its stored state holds, and that outcome's token."""
    codec, converter = Codec(), JsonConverter()
    recorded: dict[str, dict[int, str]] = {}
    for workflow_id in workflow_ids:
        stored = store.get(workflow_id)
        state = codec.decode(WorkflowState, stored.value) if stored is not None else None
        recorded[workflow_id] = {a.position: decode_one(converter, a.value, str)
                                 for a in (state.arrivals if state else ()) if a.value is not None}
    return recorded


def check_no_loss_and_stable_outcomes(recorded: dict[str, dict[int, str]], results: dict[str, list[str]],
                                      journal: Path, steps: int, what: str) -> None:
    """``what`` names the fault in the messages ("the kill", "the Redis kill")."""
    everything = executions(journal)
    assert sum(map(len, recorded.values())) > 0, f"{what} came before any step was recorded"
    assert any(len(done) < steps for done in recorded.values()), f"{what} came after every workflow finished"
    for workflow_id, tokens in results.items():
        assert len(tokens) == steps, f"{workflow_id} returned {tokens}"
        for position, token in enumerate(tokens):
            ran = [e["token"] for e in everything[(workflow_id, position)]]
            assert token in ran, f"{workflow_id} step {position}: recorded {token}, but the executions were {ran}"
        for position, token in recorded[workflow_id].items():
            assert tokens[position] == token, f"{workflow_id} step {position}: outcome changed after {what}"
