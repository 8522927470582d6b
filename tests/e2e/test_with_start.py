"""Signal-with-start and update-with-start: one message that starts the workflow unless it runs, and
signals or updates it in the same decision (every delivery mode, cached and replayed)."""

from __future__ import annotations

import pytest

import pulsarflow as pf
from pulsarflow.testing import TestEnvironment
from tests.e2e import flows


def test_signal_with_start_starts_the_workflow_and_delivers_the_signal(env: TestEnvironment) -> None:
    client = env.client()
    handle = client.signal_with_start(flows.inbox, "ann", id="sws-1", signal="message", signal_data="hi")
    assert handle.id == "sws-1"
    assert handle.result() == "ann got hi"


def test_signal_with_start_on_a_running_workflow_only_signals_it(env: TestEnvironment) -> None:
    client = env.client()
    first = client.start(flows.two_signals, id="sws-2")
    client.signal("sws-2", "item", "a")
    again = client.signal_with_start(flows.two_signals, id="sws-2", signal="item", signal_data="b")
    assert first.result() == ["a", "b"] and again.result() == ["a", "b"]
    assert client.status("sws-2").steps == 2  # one run: the second start attached to it


def test_signals_sent_with_start_before_the_code_waits_are_kept_in_order(env: TestEnvironment) -> None:
    client = env.client()
    client.signal_with_start(flows.two_signals, id="sws-3", signal="item", signal_data="first")
    client.signal_with_start(flows.two_signals, id="sws-3", signal="item", signal_data="second")
    assert client.get_handle("sws-3").result() == ["first", "second"]


def test_signal_with_start_on_a_finished_workflow_refuses_and_starts_nothing(env: TestEnvironment) -> None:
    client = env.client()
    assert client.signal_with_start(flows.inbox, "bo", id="sws-4", signal="message", signal_data="x").result() \
        == "bo got x"
    with pytest.raises(pf.WorkflowNotFoundError, match="finished"):
        client.signal_with_start(flows.inbox, "bo", id="sws-4", signal="message", signal_data="y")
    assert client.get_handle("sws-4").result() == "bo got x"


def test_update_with_start_applies_the_update_once_the_new_run_waits(env: TestEnvironment) -> None:
    client = env.client()
    handle, count = client.update_with_start(flows.cart, "cy", id="uws-1", update="add", update_args=("apple",))
    assert count == 1
    handle2, count2 = client.update_with_start(flows.cart, "cy", id="uws-1", update="add", update_args=("pear",))
    assert count2 == 2 and handle2.id == handle.id
    client.signal("uws-1", "checkout")
    assert handle.result() == ["apple", "pear", "cy: 2"]


def test_update_with_start_refused_by_the_handler_still_starts_the_run(env: TestEnvironment) -> None:
    client = env.client()
    with pytest.raises(pf.UpdateFailedError, match="an item needs a name"):
        client.update_with_start(flows.cart, "di", id="uws-2", update="add", update_args=("",))
    assert client.status("uws-2").status == "RUNNING"
    assert client.query("uws-2", "items") == []


def test_update_with_start_of_an_unknown_update_says_so(env: TestEnvironment) -> None:
    client = env.client()
    with pytest.raises(pf.UpdateFailedError, match="no update 'nope'|declares no update"):
        client.update_with_start(flows.cart, "ed", id="uws-3", update="nope")
