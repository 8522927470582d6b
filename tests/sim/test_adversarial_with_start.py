"""Signal-with-start and update-with-start attacked: with-starts, plain starts, signals, updates and
cancels on one id, concurrent, duplicated and in any order, before and after the run closes. The pure
engine must keep one run per id, take each signal once or refuse it, and never reopen a closed run."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

import pulsarflow as pf
from pulsarflow.converter import JsonConverter
from pulsarflow.engines.workflow import WorkflowEngine
from pulsarflow.interpreter.registry import Registry
from pulsarflow.messages import (
    CancelWorkflow,
    ClientMessage,
    QueryAnswer,
    ReplyTo,
    SendSignal,
    SignalAccepted,
    SignalWithStart,
    StartWorkflow,
    UpdateCall,
    UpdateWithStart,
    UpdateWorkflow,
    WorkflowEngineMessage,
    WorkflowNotFound,
    WorkflowState,
)
from pulsarflow.topics import Topics

JSON = JsonConverter()
TOPICS = Topics(app="ws")
WID = "mailbox"


@pf.workflow(name="mailbox")
async def mailbox(ctx: pf.WorkflowContext, owner: str) -> dict[str, Any]:
    added: list[str] = []

    def add(item: str) -> int:
        added.append(item)
        return len(added)

    ctx.on_update("add", add)
    got: list[str] = []
    while True:
        value = await ctx.wait_signal("m")
        if value == "stop":
            return {"owner": owner, "got": got, "added": added}
        got.append(value)


REGISTRY = Registry([mailbox])


def start(n: int) -> StartWorkflow:
    return StartWorkflow("mailbox", JSON.encode([f"owner{n}"]), reply=ReplyTo(TOPICS.client("c"), f"start{n}",
                                                                                  identity=True))


def message(kind: str, n: int) -> Any:
    reply = ReplyTo(TOPICS.client("c"), f"{kind}{n}", identity=True)
    signal = SendSignal(f"sig{n}", "m", JSON.encode(["stop" if n % 7 == 6 else f"v{n}"]), reply=reply)
    update = UpdateWorkflow(UpdateCall(f"upd{n}", "add", JSON.encode([f"i{n}"])), reply)
    return {"sws": SignalWithStart(start(n), signal), "uws": UpdateWithStart(start(n), update), "start": start(n),
            "signal": signal, "update": update, "cancel": CancelWorkflow("changed my mind", reply)}[kind]


KINDS = st.sampled_from(["sws", "sws", "sws", "uws", "uws", "start", "signal", "update", "cancel"])


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(KINDS, st.integers(0, 12), st.integers(1, 3)), min_size=1, max_size=40),
       st.sampled_from([None, 0]))
def test_with_starts_on_one_id_keep_one_run_and_take_each_signal_once(sends: list[tuple[str, int, int]],
                                                                      cache: int | None) -> None:
    engine = WorkflowEngine(REGISTRY, JSON, TOPICS, cache_size=cache)
    state: WorkflowState | None = None
    now = 1_000
    closed: str | None = None
    first_start: int | None = None
    for i, (kind, n, copies) in enumerate(sends):
        for _ in range(copies):  # a message delivered once, or again (a duplicate)
            now += 1
            decision = engine.handle(state, WorkflowEngineMessage(f"{kind}{n}", WID, now, message(kind, n)), now)
            if not decision.unchanged:
                state = decision.state
            answers = [o.message for o in decision.outgoing if isinstance(o.message, ClientMessage)]
            if kind == "sws":
                about = [a.message for a in answers if a.request_id == f"sws{n}"]
                assert len(about) == 1 and isinstance(about[0], (SignalAccepted, WorkflowNotFound)), about
                if isinstance(about[0], WorkflowNotFound):
                    assert state is not None and (state.status != "RUNNING" or f"sig{n}" in state.refused_ids)
            if kind == "uws":
                about = [a.message for a in answers if a.request_id == f"uws{n}"]
                assert len(about) == 1 and isinstance(about[0], QueryAnswer), about
            assert state is not None or kind in ("signal", "update", "cancel")
            if state is None:
                continue
            first_start = state.started_at_ms if first_start is None else first_start
            assert state.started_at_ms == first_start and state.generation == 0 and state.runs == 0, \
                f"a second run of {WID!r} began at send {i}"
            signal_ids = [a.signal.signal_id for a in state.arrivals if a.signal is not None]
            assert len(signal_ids) == len(set(signal_ids)), "a signal recorded twice"
            assert not set(signal_ids) & set(state.refused_ids), "a signal both taken and refused"
            update_ids = [a.update.update_id for a in state.arrivals if a.update is not None]
            assert len(update_ids) == len(set(update_ids)), "an update recorded twice"
            assert not set(update_ids) & set(state.refused_ids), "an update both applied and refused"
            if kind == "sws" and f"sig{n}" in signal_ids:
                assert isinstance(about[0], SignalAccepted), f"a delivered signal answered {about[0]}"
            if kind == "uws" and f"upd{n}" in update_ids:
                assert isinstance(about[0], QueryAnswer) and about[0].error is None, \
                    f"an applied update answered {about[0]}"
            if closed is not None:
                assert state.status == closed, f"a {closed} run changed to {state.status}"
            elif state.status != "RUNNING":
                closed = state.status
