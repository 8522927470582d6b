"""The replay gate on the fast layer: running workflows found in a store, replayed with new code.

``deploy apply`` and ``replay check --live`` run through the CLI with the state store and
index of an in-memory environment in place of a deployed app's (``tool.live_source``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from pulsarflow.cli import main as cli
from pulsarflow.codec import Codec
from pulsarflow.deploy import gate, live, tool
from pulsarflow.deploy import manifest as mf
from pulsarflow.deploy.running import EventsTopicIndex, ListedIndex, RedisKeyIndex, collect, sample_order
from pulsarflow.errors import BackendError, DefinitionError, ErrorInfo
from pulsarflow.interpreter.registry import Registry
from pulsarflow.messages import WorkflowState
from pulsarflow.messages.events import WorkflowEvent
from pulsarflow.messages.state import Blocked
from pulsarflow.storage import Versioned
from pulsarflow.storage.memory import InMemoryStateStore
from pulsarflow.testing import TestEnvironment
from tests.e2e import flows
from tests.e2e.versions import v1, v3

DIVERGENCE = "DIVERGES shipping wait-0: step 1: history has signal 'go', code now issues task 'add'"


def waiting_runs(count: int = 3, done: int = 1) -> TestEnvironment:
    """``count`` v1 runs waiting for the signal "go" (``wait-N``), and ``done`` completed ones."""
    env = TestEnvironment(v1.shipping, flows.add)
    client = env.client()
    for n in range(done):
        client.start("shipping", id=f"done-{n}")
        env.run_ready()
        client.signal(f"done-{n}", "go")
        assert client.get_handle(f"done-{n}").result() == "old path"
    for n in range(count):
        client.start("shipping", id=f"wait-{n}")
    env.run_ready()
    return env


def stored_ids(env: TestEnvironment) -> tuple[str, ...]:
    assert isinstance(env.store, InMemoryStateStore)
    return tuple(env.store._data)


# ListedIndex is a frozen dataclass, so its ``where`` is read-only, but the WorkflowIndex protocol
# declares ``where`` a settable attribute: mypy refuses a ListedIndex where a WorkflowIndex is
# expected (arg-type) until the protocol declares ``where`` a read-only property.
def all_ids(env: TestEnvironment) -> ListedIndex:
    return ListedIndex(stored_ids(env))


# -- finding the running workflows --------------------------------------------------------


def test_only_running_states_are_collected_and_missing_ids_are_skipped() -> None:
    env = waiting_runs(count=2, done=2)
    runs = collect(ListedIndex(("wait-0", "wait-1", "done-0", "done-1", "never-started")), env.store)  # type: ignore[arg-type]
    assert sorted(s.workflow_id for s in runs.states) == ["wait-0", "wait-1"]
    assert runs.candidates == 5 and runs.unreadable == []


def test_a_state_that_does_not_decode_is_reported_unreadable_not_skipped() -> None:
    env = waiting_runs(count=1, done=0)
    env.store.put("garbage", b"\x01\x02\x03", 0)
    runs = collect(ListedIndex(("wait-0", "garbage")), env.store)  # type: ignore[arg-type]
    assert [s.workflow_id for s in runs.states] == ["wait-0"]
    [(workflow_id, why)] = runs.unreadable
    assert workflow_id == "garbage" and "WorkflowState" in why


def test_a_read_that_fails_names_the_key_and_the_others_are_read() -> None:
    class FlakyStore(InMemoryStateStore):
        def get_many(self, keys: list[str]) -> dict[str, Versioned]:
            raise BackendError("batch read failed")

        def get(self, key: str) -> Versioned | None:
            if key == "wait-1":
                raise BackendError("function state read of 'wait-1' failed: timeout")
            return super().get(key)

    env = waiting_runs(count=2, done=0)
    store = FlakyStore()
    for key in ("wait-0", "wait-1"):
        stored = env.store.get(key)
        assert stored is not None
        store.put(key, stored.value, 0)
    runs = collect(ListedIndex(("wait-0", "wait-1")), store)  # type: ignore[arg-type]
    assert [s.workflow_id for s in runs.states] == ["wait-0"]
    assert runs.unreadable == [("wait-1", "function state read of 'wait-1' failed: timeout")]


def test_a_sample_is_the_same_runs_every_time_in_hash_order() -> None:
    env = waiting_runs(count=12, done=3)
    first = collect(all_ids(env), env.store, sample=4)  # type: ignore[arg-type]
    again = collect(ListedIndex(tuple(reversed(stored_ids(env)))), env.store, sample=4)  # type: ignore[arg-type]
    picked = [s.workflow_id for s in first.states]
    assert picked == [s.workflow_id for s in again.states]
    running = sorted((f"wait-{n}" for n in range(12)), key=sample_order)
    assert picked == running[:4] and first.candidates == 15


class FakeMessage:
    def __init__(self, key: str, data: bytes) -> None:
        self.key, self.payload = key, data

    def partition_key(self) -> str:
        return self.key

    def data(self) -> bytes:
        return self.payload


class FakeReader:
    def __init__(self, messages: list[FakeMessage]) -> None:
        self.messages, self.closed = list(messages), False

    def has_message_available(self) -> bool:
        return bool(self.messages)

    def read_next(self, timeout_millis: int) -> FakeMessage:
        return self.messages.pop(0)

    def close(self) -> None:
        self.closed = True


class FakePulsarClient:
    def __init__(self, messages: list[FakeMessage]) -> None:
        self.reader = FakeReader(messages)

    def create_reader(self, topic: str, start: Any) -> FakeReader:
        return self.reader


def event(workflow_id: str, type_: str, at_ms: int, status: str | None) -> FakeMessage:
    payload = Codec().encode(WorkflowEvent(f"{workflow_id}-{type_}-{at_ms}", type_, workflow_id, at_ms,
                                           status=status))
    return FakeMessage(workflow_id, payload)


def test_the_events_topic_gives_every_id_whose_latest_status_is_not_closed() -> None:
    pytest.importorskip("pulsar")
    client = FakePulsarClient([
        event("a", "WorkflowStarted", 1, "RUNNING"),
        event("b", "WorkflowStarted", 1, "RUNNING"), event("b", "WorkflowCompleted", 5, "COMPLETED"),
        event("c", "WorkflowStarted", 1, "RUNNING"), event("c", "WorkflowFailed", 3, "FAILED"),
        event("c", "WorkflowRestarted", 7, "RUNNING"),  # a retry reopened it
        event("d", "WorkflowStarted", 1, "RUNNING"), event("d", "WorkflowBlocked", 2, "BLOCKED"),
        event("e", "WorkflowCancelled", 9, "CANCELLED"), event("e", "TaskCompleted", 4, None),
        FakeMessage("f", b"\xc3\x01 not an event"),  # cannot tell: its key is a candidate
    ])
    index = EventsTopicIndex(client, "persistent://public/default/app-events")
    assert sorted(index.workflow_ids()) == ["a", "c", "d", "f"]
    assert index.events_read == 11 and client.reader.closed


def test_the_redis_index_scans_the_engine_prefix_glob_escaped() -> None:
    class FakeRedis:
        def scan_iter(self, match: str, count: int) -> list[bytes]:
            self.match = match
            return [b"pulsarflow:public/default/a[1]:workflow:order-1", b"pulsarflow:public/default/a[1]:workflow:x/y"]

    client = FakeRedis()
    index = RedisKeyIndex(client, "pulsarflow:public/default/a[1]:workflow:")
    assert index.workflow_ids() == ["order-1", "x/y"]
    assert client.match == "pulsarflow:public/default/a\\[1\\]:workflow:*"


# -- what the manifest and the cluster allow ----------------------------------------------


class FakeAdmin:
    def __init__(self, deployed: bool = True) -> None:
        self.deployed = deployed

    def function(self, tenant: str, namespace: str, name: str) -> dict[str, Any] | None:
        return {"name": name} if self.deployed else None


def manifest_of(**raw: Any) -> mf.Manifest:
    return mf.parse({"app": "shop", "modules": ["tests.e2e.versions.v3"],
                     "functions": [{"name": "shop-workflow-engine", "engine": "workflow",
                                    **({"config": raw.pop("config")} if "config" in raw else {})}], **raw})


def test_an_engine_not_deployed_yet_has_no_run_in_flight() -> None:
    with live.live_source(manifest_of(), FakeAdmin(deployed=False), live.Connection()) as source:  # type: ignore[arg-type]
        report = gate.check_source(source, Registry([v3.shipping, flows.add]))
    assert report.ok and report.results == []
    assert report.lines() == ["note: shop-workflow-engine is not deployed yet: no run in flight",
                              "replay check: no workflow engine deployed, so no running workflow to replay"]


def test_function_state_without_events_cannot_be_listed_and_says_what_to_do() -> None:
    with pytest.raises(DefinitionError, match=r"events: off.*cannot list its keys.*--no-replay-check"), \
            live.live_source(manifest_of(config={"events": "off"}), FakeAdmin(), live.Connection()):  # type: ignore[arg-type]
        pass


def test_redis_state_behind_a_secret_needs_the_url_given() -> None:
    manifest = manifest_of(state="redis", redis_url_secret="shop-redis")
    with pytest.raises(DefinitionError, match=r"secret 'shop-redis'.*--redis-url.*PULSARFLOW_REDIS_URL"), \
            live.live_source(manifest, FakeAdmin(), live.Connection()):  # type: ignore[arg-type]
        pass


# -- the gate in the CLI ------------------------------------------------------------------


@pytest.fixture
def deployed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    """An app whose running workflows live in an in-memory store; ``apply`` records instead of uploading."""
    env = waiting_runs(count=3, done=1)
    seen: dict[str, Any] = {"applied": 0, "env": env, "manifest": tmp_path / "functions.yaml"}

    @contextmanager
    def source(manifest: mf.Manifest, admin: Any, connection: live.Connection) -> Iterator[live.LiveSource]:
        seen["connection"] = connection
        yield live.LiveSource(all_ids(env), env.store)  # type: ignore[arg-type]

    def apply(admin: Any, manifest: mf.Manifest, out: Path) -> list[str]:
        seen["applied"] += 1
        return ["shop-workflow-engine: updated"]

    monkeypatch.setattr(tool, "live_source", source)
    monkeypatch.setattr(tool, "apply", apply)
    return seen


def write_manifest(path: Path, module: str) -> Path:
    path.write_text(f"app: shop\nmodules: [{module}]\nfunctions:\n"
                    "  - {name: shop-workflow-engine, engine: workflow}\n", encoding="utf-8")
    return path


def test_apply_refuses_a_diverging_deploy_and_uploads_nothing(deployed: dict[str, Any],
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    manifest = write_manifest(deployed["manifest"], "tests.e2e.versions.v3")
    assert cli(["deploy", "apply", "--manifest", str(manifest)]) == 1
    out, err = capsys.readouterr()
    assert deployed["applied"] == 0
    assert DIVERGENCE in out
    assert "3 running workflow(s) replayed with the new code (all; 4 candidate id(s)" in out
    assert "3 diverging, 0 unreadable" in out
    assert "nothing deployed" in err and "ctx.patched" in err and "--force" in err


def test_apply_with_force_deploys_after_printing_the_divergences(deployed: dict[str, Any],
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    manifest = write_manifest(deployed["manifest"], "tests.e2e.versions.v3")
    assert cli(["deploy", "apply", "--manifest", str(manifest), "--force"]) == 0
    out = capsys.readouterr().out
    assert deployed["applied"] == 1
    assert DIVERGENCE in out and "deploying anyway (--force)" in out


def test_apply_of_compatible_code_goes_through(deployed: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    manifest = write_manifest(deployed["manifest"], "tests.e2e.versions.v2")
    assert cli(["deploy", "apply", "--manifest", str(manifest), "--service-url", "pulsar://broker:6650"]) == 0
    out = capsys.readouterr().out
    assert deployed["applied"] == 1 and "DIVERGES" not in out
    assert "3 running workflow(s) replayed" in out and "0 diverging, 0 unreadable" in out
    assert deployed["connection"].service_url == "pulsar://broker:6650"


def test_apply_replays_a_sample_when_asked(deployed: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    manifest = write_manifest(deployed["manifest"], "tests.e2e.versions.v3")
    assert cli(["deploy", "apply", "--manifest", str(manifest), "--replay-sample", "2"]) == 1
    out = capsys.readouterr().out
    assert out.count("DIVERGES") == 2 and "2 running workflow(s) replayed with the new code (a sample of 2" in out
    with pytest.raises(SystemExit):
        cli(["deploy", "apply", "--manifest", str(manifest), "--replay-sample", "0"])
    assert "must be a whole number >= 1" in capsys.readouterr().err


def test_apply_without_the_check_does_not_look_at_running_workflows(deployed: dict[str, Any],
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    manifest = write_manifest(deployed["manifest"], "tests.e2e.versions.v3")
    assert cli(["deploy", "apply", "--manifest", str(manifest), "--no-replay-check"]) == 0
    assert deployed["applied"] == 1 and "connection" not in deployed
    assert "replay check skipped" in capsys.readouterr().out


def test_a_blocked_run_is_shown_as_blocked_already(deployed: dict[str, Any]) -> None:
    state = deployed["env"].state("wait-0")
    assert state is not None
    stuck = replace(state, blocked=Blocked(ErrorInfo("NonDeterminismError", "step 1 differs"), 1, 5))
    report = gate.check_runs(collect_one(stuck), Registry([v3.shipping, flows.add]))
    assert report.lines()[0].endswith("(blocked already: step 1: NonDeterminismError: step 1 differs)")


def collect_one(state: WorkflowState) -> Any:
    store = InMemoryStateStore()
    store.put(state.workflow_id, Codec().encode(state), 0)
    return collect(ListedIndex((state.workflow_id,)), store)  # type: ignore[arg-type]


def test_replay_check_live_runs_the_gate_without_deploying(deployed: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    # the fake the fixture put on tool (tool imports live_source without re-exporting it)
    monkeypatch.setattr(live, "live_source", tool.live_source)  # type: ignore[attr-defined]
    manifest = write_manifest(deployed["manifest"], "tests.e2e.versions.v3")
    assert cli(["replay", "check", "--live", "--manifest", str(manifest)]) == 1
    assert DIVERGENCE in capsys.readouterr().out and deployed["applied"] == 0
    assert cli(["replay", "check", "--live", "--manifest", str(manifest), "--modules", "tests.e2e.versions.v2"]) == 0
    assert "0 diverging" in capsys.readouterr().out
    assert cli(["replay", "check", "--live", "--manifest", str(manifest), "some/dir"]) == 2
    assert "drop the paths" in capsys.readouterr().err


# -- function state through the admin REST API -------------------------------------------


class FakeStateAdmin:
    """The admin REST API's state answers over a dict of raw function state (key -> text)."""

    table: dict[str, str] = {}

    def __init__(self, url: str) -> None:
        self.url = url

    def function_state(self, tenant: str, namespace: str, name: str, key: str) -> dict[str, Any] | None:
        if key == "renamed":
            return {"key": "other", "stringValue": "1:AAAA", "version": 1}
        text = self.table.get(key)
        return None if text is None else {"key": key, "stringValue": text, "version": 1}


def test_function_state_is_read_through_the_admin_api_and_large_states_are_reported(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from pulsarflow.pulsar.function_state import CHUNK_BYTES, FunctionStateStore

    env = waiting_runs(count=1, done=0)
    stored = env.store.get("wait-0")
    assert stored is not None
    big = replace(Codec().decode(WorkflowState, stored.value), workflow_id="big", input=b"x" * (CHUNK_BYTES + 10))
    writer = FunctionStateStore(type("Table", (), {"put_state": FakeStateAdmin.table.__setitem__})())
    writer.put("wait-0", stored.value, 0)
    writer.put("big", Codec().encode(big), 0)
    monkeypatch.setattr(live, "PulsarAdmin", FakeStateAdmin)
    store = FunctionStateStore(live.AdminStateContext("http://admin", "public", "default", "shop-workflow-engine"))
    runs = collect(ListedIndex(("wait-0", "big", "renamed", "..", "absent")), store)  # type: ignore[arg-type]
    assert [s.workflow_id for s in runs.states] == ["wait-0"]
    why = dict(runs.unreadable)
    assert sorted(why) == ["..", "big", "renamed"]
    assert "over 512 KiB" in why["big"] and "HTTP 400" in why["big"]
    assert "cannot address the key '..'" in why[".."]
    assert "something else than its text value (key 'other'" in why["renamed"]


def test_a_redis_password_is_never_printed() -> None:
    manifest = manifest_of(state="redis", redis_url_secret="redis://app:hunter2@cache:6379/0")
    with pytest.raises(DefinitionError) as refused, \
            live.live_source(manifest, FakeAdmin(), live.Connection()):  # type: ignore[arg-type]
        pass
    assert "hunter2" not in str(refused.value) and "app:***@cache" in str(refused.value)
    assert "hunter2" not in repr(live.Connection(redis_url="redis://app:hunter2@cache:6379/0"))
