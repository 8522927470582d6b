"""The visibility commands against the embedded mode: list, show, signal, cancel, retry; text and --json."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from pulsarflow.cli import main as pulsarflow_main
from pulsarflow.cli_visibility import main
from pulsarflow.events.memory import InMemoryEventStore
from pulsarflow.testing import TestEnvironment
from pulsarflow.visibility.feed import follow
from pulsarflow.visibility.memory import InMemoryVisibilityStore
from pulsarflow.visibility.render import Progress
from pulsarflow.visibility.service import VisibilityService
from pulsarflow.visibility.sqlite import SqliteVisibilityStore
from tests.e2e import flows


@pytest.fixture
def env() -> Iterator[TestEnvironment]:
    flows.FLAKY.clear()
    environment = TestEnvironment(*flows.ALL)
    yield environment
    environment.close()


@pytest.fixture
def service(env: TestEnvironment) -> VisibilityService:
    store = InMemoryVisibilityStore()
    assert isinstance(env.events, InMemoryEventStore)
    follow(env.events, store)
    return VisibilityService(store, env.client())


def run(capsys: pytest.CaptureFixture[str], service: VisibilityService, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv), service)
    out, err = capsys.readouterr()
    return code, out, err


def test_list_filters_and_pages(env: TestEnvironment, service: VisibilityService,
                                capsys: pytest.CaptureFixture[str]) -> None:
    client = env.client()
    for i in range(3):
        client.start(flows.sequence, i, id=f"seq-{i}").result()
        env.virtual_clock.advance(1)
    with pytest.raises(Exception):  # noqa: B017 - any failure; the status is what is checked
        client.start(flows.non_retryable, "k", id="bad-1").result()
    code, out, _ = run(capsys, service, "list")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "NAME", "STATUS", "STARTED", "DURATION", "TAGS"]
    assert [line.split()[0] for line in lines[1:]] == ["bad-1", "seq-2", "seq-1", "seq-0"]
    code, out, _ = run(capsys, service, "list", "--status", "failed", "--json")
    assert [w["workflow_id"] for w in json.loads(out)["workflows"]] == ["bad-1"]
    code, out, _ = run(capsys, service, "list", "--name", "sequence", "--limit", "2", "--json")
    page = json.loads(out)
    assert [w["workflow_id"] for w in page["workflows"]] == ["seq-2", "seq-1"] and page["next_cursor"]
    code, out, _ = run(capsys, service, "list", "--name", "sequence", "--cursor", page["next_cursor"], "--json")
    assert [w["workflow_id"] for w in json.loads(out)["workflows"]] == ["seq-0"]
    code, out, _ = run(capsys, service, "list", "--started-after", "2026-01-01T00:00:01Z", "--name", "sequence")
    assert "seq-0" not in out and "seq-1" in out


def test_show_prints_status_result_and_timeline_with_attempts(env: TestEnvironment, service: VisibilityService,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    env.client().start(flows.retrying, "cli", 2, id="r-1").result()
    code, out, _ = run(capsys, service, "show", "r-1")
    assert code == 0
    assert "status    COMPLETED" in out and 'result    cli ok after 3' in out
    assert "attempt 1" in out and "ConnectionError: attempt 1 of cli failed" in out
    code, out, _ = run(capsys, service, "show", "r-1", "--json")
    shown = json.loads(out)
    step = shown["steps"][0]
    assert (step["kind"], step["name"], step["outcome"]) == ("task", "flaky", "completed")
    assert [a["number"] for a in step["attempts"]] == [1, 2, 3]
    assert step["attempts"][0]["error"]["type"] == "ConnectionError"
    assert step["attempts"][0]["retry_at_ms"] is not None
    assert shown["workflow"]["result"] == "cli ok after 3"
    assert shown["events"][0]["type"] == "WorkflowStarted"


def test_show_of_a_failed_workflow_prints_the_traceback(env: TestEnvironment, service: VisibilityService,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(Exception):  # noqa: B017
        env.client().start(flows.non_retryable, "tb", id="f-1").result()
    code, out, _ = run(capsys, service, "show", "f-1")
    assert code == 0
    assert "status    FAILED" in out and "Traceback" in out and "KeyError" in out


def test_signal_cancel_and_retry(env: TestEnvironment, service: VisibilityService, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    client = env.client()
    handle = client.start(flows.approval, 1000, id="a-1")
    env.run_ready()
    code, out, _ = run(capsys, service, "signal", "a-1", "decision", '"yes"')
    assert code == 0 and "a-1: signal 'decision' delivered" in out
    assert handle.result() == "got yes"
    strict = client.start(flows.holds_strictly, "seat", id="s-1")
    env.run_ready()
    code, out, _ = run(capsys, service, "cancel", "s-1", "--reason", "not needed", "--json")
    assert code == 0 and json.loads(out)["action"] == "cancel"
    with pytest.raises(Exception):  # noqa: B017
        strict.result()
    assert service.store.get("s-1").status == "CANCELLED"  # type: ignore[union-attr]
    flag = tmp_path / "flag"
    with pytest.raises(Exception):  # noqa: B017
        client.start(flows.resumable, str(flag), id="re-1").result()
    flag.write_text("fixed")
    code, out, _ = run(capsys, service, "retry", "re-1")
    assert code == 0 and "re-1:" in out
    client.get_handle("re-1").result()
    assert service.store.get("re-1").status == "COMPLETED"  # type: ignore[union-attr]


def test_bad_input_says_what_to_fix(service: VisibilityService, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, service, "show", "ghost")
    assert code == 2 and "no workflow 'ghost'" in err
    code, _, err = run(capsys, service, "signal", "a", "go", "not json")
    assert code == 2 and "is not JSON; quote strings" in err
    code, _, err = run(capsys, service, "list", "--started-after", "yesterday")
    assert code == 2 and "neither ISO 8601" in err
    code, _, err = run(capsys, service, "list", "--cursor", "###")
    assert code == 2 and "next_cursor" in err
    code, _, err = run(capsys, VisibilityService(InMemoryVisibilityStore()), "cancel", "x")
    assert code == 2 and "needs a connection to the engines" in err
    code, _, err = run(capsys, VisibilityService(InMemoryVisibilityStore(), client=object()), "retry", "x")
    assert code == 2 and "not supported by this release" in err


def test_the_pulsarflow_command_reads_a_sqlite_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "v.db"
    env = TestEnvironment(*flows.ALL)
    store = SqliteVisibilityStore(path)
    follow(env.events, store)  # type: ignore[arg-type]
    env.client().start(flows.sequence, 2, id="from-file").result()
    store.close()
    assert pulsarflow_main(["list", "--store", f"sqlite:///{path}", "--json"]) == 0
    assert [w["workflow_id"] for w in json.loads(capsys.readouterr().out)["workflows"]] == ["from-file"]
    assert pulsarflow_main(["list", "--store", "mysql://x"]) == 2
    assert "unknown visibility store URL" in capsys.readouterr().err


def test_show_wait_shows_progress_on_a_terminal(env: TestEnvironment, service: VisibilityService) -> None:
    from pulsarflow.visibility.render import wait_until_closed

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    env.client().start(flows.approval, 1000, id="w-1")
    env.run_ready()
    out = Terminal()
    with pytest.raises(Exception, match="still RUNNING after 0.6s"):
        wait_until_closed(service, "w-1", 0.6, out)
    assert "w-1: RUNNING" in out.getvalue() and out.getvalue().startswith("\r")
    quiet = io.StringIO()
    Progress(quiet).update("x")
    assert quiet.getvalue() == ""


def test_a_blocked_run_is_listed_as_blocked_with_its_reason(capsys: pytest.CaptureFixture[str]) -> None:
    from tests.e2e import semantics_flows as sf

    sf.BEHAVIOUR["fixable"] = "bug"
    try:
        env = TestEnvironment(*sf.ALL, raise_on_blocked=False)
        store = InMemoryVisibilityStore()
        assert isinstance(env.events, InMemoryEventStore)
        follow(env.events, store)
        service = VisibilityService(store, env.client())
        env.client().start(sf.fixable, id="stuck-1")
        env.advance(11)
        code, out, _ = run(capsys, service, "list", "--status", "blocked", "--json")
        listed = json.loads(out)
        assert code == 0 and [w["workflow_id"] for w in listed["workflows"]] == ["stuck-1"]
        code, out, _ = run(capsys, service, "show", "stuck-1")
        assert code == 0 and "BLOCKED" in out and "KeyError" in out
    finally:
        sf.BEHAVIOUR.clear()
