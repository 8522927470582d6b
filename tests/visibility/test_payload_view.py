"""Payloads in the CLI and the dashboard: decoded with the app's codecs and keys, described without them.

Also the last heartbeat details of an attempt in the timeline, from the events that carry them.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pulsarflow.cli_visibility import main
from pulsarflow.dashboard.embedded import EmbeddedDashboard
from pulsarflow.errors import DefinitionError
from pulsarflow.events.memory import InMemoryEventStore
from pulsarflow.messages import events as ev
from pulsarflow.messages.events import WorkflowEvent
from pulsarflow.payloads import AesGcmCodec, ClaimCheck, CodecChain, FolderStore, ZlibCodec
from pulsarflow.testing import TestEnvironment
from pulsarflow.visibility.feed import follow
from pulsarflow.visibility.memory import InMemoryVisibilityStore
from pulsarflow.visibility.payload_view import PayloadView, view_from_settings
from pulsarflow.visibility.service import VisibilityService, step_json
from pulsarflow.visibility.timeline import HEARTBEAT, steps
from tests.e2e import flows
from tests.visibility.test_dashboard_api import call, eventually

pytest.importorskip("cryptography")
KEY, OTHER = os.urandom(32), os.urandom(32)


def keys_json(key: bytes = KEY, key_id: str = "k1") -> str:
    return json.dumps({"current": key_id, "keys": {key_id: base64.b64encode(key).decode()}})


def sealed(value: Any, key: bytes = KEY, key_id: str = "k1") -> bytes:
    return CodecChain([ZlibCodec(min_size=1), AesGcmCodec({key_id: key}, key_id)]).encode([value])


def test_without_codecs_an_encrypted_payload_names_its_key_and_a_compressed_one_is_shown() -> None:
    view = PayloadView()
    shown = view(sealed({"card": "4111"}))
    assert set(shown) == {"undecoded"} and shown["undecoded"].startswith("encrypted with key 'k1'")
    assert "4111" not in json.dumps(shown)
    assert view(CodecChain([ZlibCodec(min_size=1)]).encode([{"a": 1}])) == {"a": 1}
    assert view(b'["plain"]') == "plain" and view(None) is None
    assert view(b"\x00\x01") == {"base64": "AAE="}


def test_with_the_keys_it_decodes_and_a_wrong_key_says_so() -> None:
    assert view_from_settings("zlib,aesgcm", keys_json())(sealed({"card": "4111"})) == {"card": "4111"}
    wrong = view_from_settings("zlib,aesgcm", keys_json(OTHER))(sealed("x"))
    assert "does not decrypt with this process's key of that id" in wrong["undecoded"]
    other_id = view_from_settings("aesgcm", keys_json(OTHER, "k2"))(sealed("x"))
    assert "encrypted with key 'k1', which this process does not have" in other_id["undecoded"]
    with pytest.raises(DefinitionError, match="--payload-keys-file"):
        view_from_settings("aesgcm")


def test_a_claim_checked_payload_is_a_reference_until_the_store_is_given(tmp_path: Path) -> None:
    chain = CodecChain([ClaimCheck(FolderStore(tmp_path), threshold=64)])
    data = chain.encode(["y" * 500])
    assert "kept in a payload store as " in PayloadView()(data)["undecoded"]
    assert view_from_settings("claim", store=f"folder:{tmp_path}")(data) == "y" * 500
    for stored in tmp_path.iterdir():
        stored.unlink()
    assert "is not in FolderStore" in view_from_settings("claim", store=f"folder:{tmp_path}")(data)["undecoded"]


@pytest.fixture
def sealed_env() -> Iterator[TestEnvironment]:
    env = TestEnvironment(*flows.ALL, converter=CodecChain([AesGcmCodec({"k1": KEY}, "k1")]))
    yield env
    env.close()


def _service(env: TestEnvironment) -> VisibilityService:
    store = InMemoryVisibilityStore()
    assert isinstance(env.events, InMemoryEventStore)
    follow(env.events, store)
    return VisibilityService(store, env.client())


def test_the_cli_shows_payloads_decoded_with_the_flags_and_described_without(
        sealed_env: TestEnvironment, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sealed_env.client().start(flows.sequence, 3, id="sealed-1").result()
    service = _service(sealed_env)
    assert main(["show", "sealed-1"], service) == 0
    out = capsys.readouterr().out
    assert "result    <encrypted with key 'k1'" in out
    (tmp_path / "keys.json").write_text(keys_json())
    assert main(["show", "sealed-1", "--json", "--payload-codecs", "aesgcm",
                 "--payload-keys-file", str(tmp_path / "keys.json")], service) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["workflow"]["result"] == 3 and [s["value"] for s in shown["steps"]] == [0, 1, 3]
    (tmp_path / "wrong.json").write_text(keys_json(OTHER))
    assert main(["show", "sealed-1", "--payload-codecs", "aesgcm",
                 "--payload-keys-file", str(tmp_path / "wrong.json")], service) == 0
    assert "does not decrypt" in capsys.readouterr().out
    assert main(["show", "sealed-1", "--payload-codecs", "aesgcm",
                 "--payload-keys-file", str(tmp_path / "absent.json")], service) == 2
    assert "cannot read the payload keys file" in capsys.readouterr().err


def test_the_dashboard_api_decodes_with_its_view_and_a_wrong_key_never_breaks_the_page() -> None:
    env = TestEnvironment(*flows.ALL, converter=CodecChain([AesGcmCodec({"k1": KEY}, "k1")]))
    board = EmbeddedDashboard(env).start()
    try:
        with board.lock:
            env.client().start(flows.sequence, 2, id="sealed-http")
        assert eventually(lambda: call(board, "/api/workflow?id=sealed-http")[1].get("workflow", {}).get("status")
                          == "COMPLETED")
        status, shown = call(board, "/api/workflow?id=sealed-http")
        assert status == 200 and shown["workflow"]["result"]["undecoded"].startswith("encrypted with key 'k1'")
        board.service.payloads = view_from_settings("aesgcm", keys_json(OTHER))
        status, shown = call(board, "/api/workflow?id=sealed-http")
        assert status == 200 and "does not decrypt" in shown["workflow"]["result"]["undecoded"]
        board.service.payloads = view_from_settings("aesgcm", keys_json())
        assert call(board, "/api/workflow?id=sealed-http")[1]["workflow"]["result"] == 1
        assert call(board, "/api/workflows")[1]["workflows"][0]["result"] == 1
    finally:
        board.stop()
        env.close()


def _event(type_: str, at: int, attempt: int, **fields: Any) -> WorkflowEvent:
    return WorkflowEvent(event_id=f"{type_}-{at}", type=type_, workflow_id="hb", at_ms=at, source="executor",
                         cause_id="c", position=0, attempt=attempt, name="download", **fields)


def test_the_last_heartbeat_details_of_an_attempt_are_in_the_timeline_and_the_cli(
        capsys: pytest.CaptureFixture[str]) -> None:
    """From the events that carry them (``data`` of TaskRetried, TaskHeartbeat); see docs/visibility.md."""
    details = json.dumps([{"offset": 4096}]).encode()
    history = [_event(ev.TASK_DISPATCHED, 1, 1), _event(HEARTBEAT, 2, 1, data=json.dumps([{"offset": 1}]).encode()),
               _event(ev.TASK_STARTED, 3, 1, duration_ms=5), _event(ev.TASK_RETRIED, 4, 1, data=details),
               _event(HEARTBEAT, 5, 2, data=json.dumps([{"offset": 8192}]).encode())]
    (step,) = steps(history)
    shown = step_json(step, PayloadView())
    assert [(a["number"], a["heartbeat"]) for a in shown["attempts"]] == [(1, {"offset": 4096}),
                                                                         (2, {"offset": 8192})]
    store = InMemoryVisibilityStore()
    store.apply([_event(ev.WORKFLOW_STARTED, 0, 0, workflow_name="dl", status="RUNNING"), *history])
    assert main(["show", "hb"], VisibilityService(store)) == 0
    out = capsys.readouterr().out
    assert "last heartbeat {'offset': 4096}" in out and "last heartbeat {'offset': 8192}" in out
