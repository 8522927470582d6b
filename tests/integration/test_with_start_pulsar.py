"""Signal-with-start and update-with-start against the engines deployed as Pulsar Functions."""

from __future__ import annotations

import uuid

import pytest

import pulsarflow as pf
from tests.e2e import flows

pytestmark = pytest.mark.pulsar


def test_signal_with_start_and_update_with_start_on_pulsar(client) -> None:  # type: ignore[no-untyped-def]
    wid = f"sws-{uuid.uuid4().hex[:8]}"
    handle = client.signal_with_start(flows.inbox, "ann", id=wid, signal="message", signal_data="hi", wait=120)
    assert handle.result(timeout=120) == "ann got hi"
    with pytest.raises(pf.WorkflowNotFoundError, match="finished"):
        client.signal_with_start(flows.inbox, "ann", id=wid, signal="message", signal_data="late", wait=120)
    cart = f"uws-{uuid.uuid4().hex[:8]}"
    first, count = client.update_with_start(flows.cart, "cy", id=cart, update="add", update_args=("apple",), wait=120)
    _, count2 = client.update_with_start(flows.cart, "cy", id=cart, update="add", update_args=("pear",), wait=120)
    assert (count, count2) == (1, 2)
    client.signal(cart, "checkout", timeout=120)
    assert first.result(timeout=120) == ["apple", "pear", "cy: 2"]
