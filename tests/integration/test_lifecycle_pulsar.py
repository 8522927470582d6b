"""Cancel and retry with the engines deployed as Pulsar Functions on a real standalone."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

import pulsarflow as pf
from pulsarflow.messages import client as status
from pulsarflow.pulsar.worker import pulsar_client_of
from tests.e2e import flows

pytestmark = pytest.mark.pulsar
TIMEOUT = 90


def eventually(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {timeout}s")
        time.sleep(0.2)


def exists(client, workflow_id: str) -> bool:  # type: ignore[no-untyped-def]
    try:
        client.status(workflow_id, timeout=10)
        return True
    except pf.WorkflowNotFoundError:
        return False


def test_cancel_runs_cleanup_and_cancels_the_child(client) -> None:  # type: ignore[no-untyped-def]
    workflow_id = f"holds-{time.time_ns()}"
    handle = client.start(flows.holds, "seat-3", f"down-{workflow_id}", id=workflow_id)
    eventually(lambda: exists(client, f"{workflow_id}/0"), "the child's start")
    assert client.cancel(workflow_id, "customer left", timeout=TIMEOUT) == "cancellation requested"
    assert handle.result(timeout=TIMEOUT) == "released seat-3"
    eventually(lambda: client.status(f"{workflow_id}/0").status == status.CANCELLED, "the child's cancellation")


def test_a_running_task_is_told_and_its_result_ignored(client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    marker = tmp_path / "watchful"
    workflow_id = f"watching-{time.time_ns()}"
    handle = client.start(flows.watching, str(marker), 60.0, id=workflow_id)
    time.sleep(2.0)  # the task is running in the executor function by now
    client.cancel(workflow_id, "stop watching", timeout=TIMEOUT)
    with pytest.raises(pf.WorkflowCancelledError, match="stop watching"):
        handle.result(timeout=TIMEOUT)
    eventually(marker.exists, "the task's marker file")
    assert marker.read_text() == "cancelled"
    assert client.status(workflow_id).status == status.CANCELLED


def test_retry_resumes_a_failed_workflow(client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    flag = tmp_path / "fixed"
    handle = client.start(flows.resumable, str(flag), id=f"resumable-{time.time_ns()}")
    with pytest.raises(pf.WorkflowFailedError, match="is missing"):
        handle.result(timeout=TIMEOUT)
    flag.write_text("fixed on Pulsar")
    assert "resumes" in handle.retry()
    assert handle.result(timeout=TIMEOUT) == [3, "fixed on Pulsar"]


def test_tags_and_custom_ids(client) -> None:  # type: ignore[no-untyped-def]
    run = time.time_ns()
    tag = f"team-{run}"
    handles = [client.start(flows.inbox, f"u{i}", id=f"inbox-{run}-{i}", tags=[tag]) for i in range(4)]
    eventually(lambda: sorted(client.find_ids(tag)) == sorted(h.id for h in handles), "the tag's ids")
    client.signal_tag(tag, "message", "all")
    assert [h.result(timeout=TIMEOUT) for h in handles] == [f"u{i} got all" for i in range(4)]
    eventually(lambda: client.find_ids(tag) == [], "the ended workflows leaving the tag")
    first = client.start(flows.inbox, "solo", custom_id=f"solo-{run}")
    second = client.start(flows.inbox, "solo again", custom_id=f"solo-{run}")
    assert second.id == first.id
    client.signal(first.id, "message", "once")
    assert second.result(timeout=TIMEOUT) == "solo got once"
    doomed = [client.start(flows.inbox, f"d{i}", tags=[f"doomed-{run}"]) for i in range(2)]
    eventually(lambda: len(client.find_ids(f"doomed-{run}")) == 2, "the doomed tag's ids")
    client.cancel_tag(f"doomed-{run}", "closing")
    for handle in doomed:
        with pytest.raises(pf.WorkflowCancelledError, match="closing"):
            handle.result(timeout=TIMEOUT)


def test_queries_and_updates(client) -> None:  # type: ignore[no-untyped-def]
    handle = client.start(flows.cart, "pulsar", id=f"cart-{time.time_ns()}")
    eventually(lambda: exists(client, handle.id), "the cart's start")
    assert handle.update("add", "apple") == 1
    assert client.update(handle.id, "add", "pear", update_id=f"{handle.id}-u2") == 2
    assert client.update(handle.id, "add", "pear", update_id=f"{handle.id}-u2") == 2
    with pytest.raises(pf.UpdateFailedError, match="an item needs a name"):
        handle.update("add", "")
    assert handle.query("items") == ["apple", "pear"]
    client.signal(handle.id, "checkout")
    assert handle.result(timeout=TIMEOUT) == ["apple", "pear", "pulsar: 2"]


def test_the_deployed_engines_publish_every_event(client, deployment, pulsar_admin) -> None:  # type: ignore[no-untyped-def]
    from pulsarflow.pulsar.events_feed import PulsarEventFeed
    from pulsarflow.visibility.memory import InMemoryVisibilityStore

    manifest, report, _ = deployment
    assert f"{manifest.topics.events}: retained without limit" in report
    assert pulsar_admin.retention(manifest.topics.events) == {"retentionTimeInMinutes": -1, "retentionSizeInMB": -1}
    assert "WorkflowEvent" in str(pulsar_admin.schema(manifest.topics.events))
    key = f"ev{time.time_ns()}"
    handle = client.start(flows.retrying, key, 1, id=f"events-{key}", tags=["audited"])
    assert handle.result(timeout=TIMEOUT) == f"{key} ok after 2"
    store = InMemoryVisibilityStore()
    feed = PulsarEventFeed(pulsar_client_of(client), manifest.topics.events, store, f"it-{key}")

    def complete() -> bool:
        feed.replay()
        summary = store.get(handle.id)
        return summary is not None and summary.status == status.COMPLETED

    eventually(complete, "the workflow's events on the events topic")
    kinds = [e.type for e in store.history(handle.id)]
    assert kinds[0] == "WorkflowStarted" and kinds[-1] == "WorkflowCompleted"
    assert kinds.count("TaskStarted") == 2 and "TaskRetried" in kinds
    assert store.get(handle.id).tags == ("audited",)  # type: ignore[union-attr]
