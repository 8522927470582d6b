"""The shortcuts of the per-message path agree with the plain computations they replace."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pulsarflow import tracing
from pulsarflow.engines.live import ArrivedPositions, LiveWorkflows, _continues
from pulsarflow.errors import ErrorInfo
from pulsarflow.messages import Arrival, Blocked, Command, WorkflowState
from pulsarflow.messages.evolve import evolve
from pulsarflow.messages.state import TASK


def _state(**changes: object) -> WorkflowState:
    base = WorkflowState(workflow_id="wf", workflow_name="flow", input=b"[]", status="RUNNING", started_at_ms=5)
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


# -- evolve ----------------------------------------------------------------------------

FIELDS = {"status": st.sampled_from(["RUNNING", "FAILED"]), "generation": st.integers(0, 9),
          "runs": st.integers(0, 9), "result": st.none() | st.binary(max_size=4),
          "arrivals": st.lists(st.builds(Arrival, position=st.integers(-1, 5), at_ms=st.integers(0, 9)),
                               max_size=3).map(tuple),
          "blocked": st.none() | st.just(Blocked(ErrorInfo("E", "stuck"), 1, 2))}


@given(st.fixed_dictionaries({}, optional=FIELDS))
def test_evolve_makes_what_replace_makes(changes: dict[str, object]) -> None:
    state = _state(commands=(Command(0, TASK, "t"),), tags=("a",))
    assert evolve(state, **changes) == dataclasses.replace(state, **changes)  # type: ignore[arg-type]


def test_evolve_refuses_a_field_the_record_lacks() -> None:
    with pytest.raises(TypeError, match="no field 'nope'"):
        evolve(_state(), nope=1)


def test_evolve_falls_back_for_a_record_with_a_field_outside_init() -> None:
    @dataclasses.dataclass(frozen=True)
    class Odd:
        a: int
        b: int = dataclasses.field(default=0, init=False)

    assert evolve(Odd(1), a=2) == Odd(2)


# -- the positions that have arrived, kept between messages ------------------------------

# What happens to a workflow's arrivals between two messages: one more arrives (the usual
# step), the state comes back from the store (equal, but new objects), a retry cuts the
# history and starts a new run, or a continue-as-new empties it.
STEPS = st.lists(st.tuples(st.sampled_from(["arrive", "reloaded", "retry", "continue"]), st.integers(-1, 30)),
                 max_size=40)


@settings(max_examples=200)
@given(STEPS, st.integers(0, 3))
def test_arrived_positions_match_the_arrivals(steps: list[tuple[str, int]], size: int) -> None:
    index = ArrivedPositions(size)
    state = _state()
    for what, n in steps:
        if what == "arrive":
            state = evolve(state, arrivals=state.arrivals + (Arrival(n, 0),))
        elif what == "reloaded":
            state = evolve(state, arrivals=tuple(dataclasses.replace(a) for a in state.arrivals))
        elif what == "retry":
            cut = n % (len(state.arrivals) + 1)
            state = evolve(state, arrivals=state.arrivals[:cut] + (Arrival(n, 1),), generation=state.generation + 1)
        else:
            state = evolve(state, arrivals=(), runs=state.runs + 1)
        assert index.of(state) == {a.position for a in state.arrivals}


def test_arrived_positions_do_not_trust_a_history_that_changed_within_a_run() -> None:
    index = ArrivedPositions()
    first = _state(arrivals=(Arrival(0, 0), Arrival(1, 0)))
    assert index.of(first) == {0, 1}
    other = _state(arrivals=(Arrival(7, 0), Arrival(1, 0)))  # same length, other entries: new objects
    assert index.of(other) == {7, 1}


# -- the workflow cache's check ----------------------------------------------------------

def test_the_cache_goes_on_from_a_state_that_only_grew() -> None:
    after = _state(commands=(Command(0, TASK, "t"),), arrivals=(Arrival(0, 1, value=b"1"),))
    grown = evolve(after, arrivals=after.arrivals + (Arrival(-1, 2),))
    assert _continues(after, grown)
    reloaded = _state(commands=(Command(0, TASK, "t"),), arrivals=(Arrival(0, 1, value=b"1"), Arrival(-1, 2)))
    assert _continues(after, reloaded)  # equal entries, new objects: compared one by one


@pytest.mark.parametrize("changed", [
    {"arrivals": (Arrival(0, 1, value=b"2"),)},  # another outcome at the same place
    {"arrivals": ()},
    {"commands": (Command(0, TASK, "other"),)},
    {"commands": (Command(0, TASK, "t"), Command(1, TASK, "t"))},
    {"generation": 1}, {"runs": 1}, {"input": b"[1]"}, {"blocked": Blocked(ErrorInfo("E", "stuck"), 0, 0)},
])
def test_the_cache_misses_a_state_that_is_not_the_one_it_left_plus_arrivals(changed: dict[str, object]) -> None:
    after = _state(commands=(Command(0, TASK, "t"),), arrivals=(Arrival(0, 1, value=b"1"),))
    assert not _continues(after, dataclasses.replace(after, **changed))  # type: ignore[arg-type]
    live = LiveWorkflows(4)
    assert live.take(dataclasses.replace(after, **changed)) is None  # type: ignore[arg-type]


# -- spans ---------------------------------------------------------------------------------

def test_no_span_is_made_without_a_tracer_provider_or_a_parent(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("opentelemetry")
    from opentelemetry import trace

    # as in a process that never set a provider (another test of this process may have set one)
    monkeypatch.setattr(trace, "get_tracer_provider", trace.ProxyTracerProvider)
    assert tracing.span("x") is tracing.span("y")  # the shared no-op context
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    with tracing.span("x", parent):  # a parent is carried on even so (or a child of it, with a provider set)
        current = tracing.current_traceparent()
        assert current is not None and current.split("-")[1] == parent.split("-")[1]
