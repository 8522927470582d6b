"""Signal- and update-with-start attacked end to end (every delivery mode, cached and replayed): on a
failed, cancelled or completed run they are refused and start nothing (ids are not reused, a deliberate
difference from Temporal's id reuse policy), and a duplicated with-start is taken once."""

from __future__ import annotations

import contextlib

import pytest

import pulsarflow as pf
from pulsarflow.testing import TestEnvironment
from tests.e2e import flows


def finish(env: TestEnvironment, workflow_id: str, how: str) -> None:
    client = env.client()
    if how == "failed":
        handle = client.start(flows.non_retryable, "missing", id=workflow_id)
    else:
        handle = client.start(flows.inbox, "ann", id=workflow_id)
        if how == "cancelled":
            client.cancel(workflow_id)
        else:
            client.signal(workflow_id, "message", "first")
    with pytest.raises(pf.WorkflowFailedError) if how != "completed" else contextlib.nullcontext():
        handle.result()


@pytest.mark.parametrize("how", ["completed", "failed", "cancelled"])
def test_with_start_on_a_closed_run_is_refused_and_starts_nothing(env: TestEnvironment, how: str) -> None:
    workflow_id = f"closed-{how}"
    finish(env, workflow_id, how)
    client = env.client()
    before = env.state(workflow_id)
    assert before is not None
    with pytest.raises(pf.WorkflowNotFoundError, match=rf"has finished \({how.upper()}\)"):
        client.signal_with_start(flows.inbox, "bo", id=workflow_id, signal="message", signal_data="again")
    with pytest.raises(pf.UpdateFailedError, match=f"is {how.upper()}; only a running workflow takes updates"):
        client.update_with_start(flows.cart, "bo", id=workflow_id, update="add", update_args=("x",))
    after = env.state(workflow_id)
    assert after is not None and after.status == how.upper()
    assert (after.generation, after.runs, after.started_at_ms, after.arrivals) == \
        (before.generation, before.runs, before.started_at_ms, before.arrivals)  # no new run, nothing recorded


def test_a_with_start_whose_signal_ends_the_run_is_accepted_once(env: TestEnvironment) -> None:
    client = env.client()
    handle = client.signal_with_start(flows.inbox, "cy", id="ends-at-once", signal="message", signal_data="bye")
    assert handle.result() == "cy got bye"  # the duplicate copy (delivery "twice") is answered as accepted too
    state = env.state("ends-at-once")
    assert state is not None and state.refused_ids == ()
