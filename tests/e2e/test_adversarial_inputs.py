"""Hostile input to the public APIs: ids and names of the wrong type, empty, too long, with NUL or lone
surrogates; each call is refused before anything is sent, with an error naming what is wrong, and
workflow code that passes such a name blocks its run with that error instead of crashing the engine."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pulsarflow as pf
from pulsarflow.errors import LimitExceededError
from pulsarflow.interpreter.names import MAX_NAME_CHARS
from pulsarflow.testing import TestEnvironment


@pf.workflow
async def named(ctx: pf.WorkflowContext, name: str) -> str:
    return str(await ctx.wait_signal(name))


@pf.workflow
async def with_handlers(ctx: pf.WorkflowContext) -> str:
    seen: list[str] = []

    def note(text: str) -> int:
        seen.append(text)
        return len(seen)

    ctx.on_update("note", note)
    ctx.on_query("notes", lambda: list(seen))
    return str(await ctx.wait_signal("done"))


BAD_NAMES: list[tuple[Any, str]] = [
    (5, "must be a string, got int"), (None, "must be a string, got NoneType"), (b"go", "must be a string, got bytes"),
    ("", "must not be empty"), ("n" * (MAX_NAME_CHARS + 1), "at most 1,000 are allowed"),
    ("\udc00", "is not valid unicode text"),
]
BAD_IDS: list[tuple[Any, str]] = [
    (123, "must be a non-empty string"), ("", "must be a non-empty string"), ("x" * 10_000, "at most 1,000"),
    ("a\0b", "contains a NUL"), ("a\ud800", "not valid unicode"),
]


@pytest.fixture
def kit() -> Iterator[TestEnvironment]:
    env = TestEnvironment(named, with_handlers, bad_signal_name, bad_query_name, bad_handler)
    yield env
    env.close()


def calls_with_a_name(client: pf.Client) -> dict[str, Callable[[Any], Any]]:
    return {
        "signal": lambda name: client.signal("wh", name, 1),
        "query": lambda name: client.query("wh", name),
        "update": lambda name: client.update("wh", name, "x"),
        "signal_with_start": lambda name: client.signal_with_start(with_handlers, id="wh", signal=name),
        "update_with_start": lambda name: client.update_with_start(with_handlers, id="wh", update=name),
        "update_id": lambda name: client.update("wh", "note", "x", update_id=name) if name is not None else
        (_ for _ in ()).throw(pf.DefinitionError("None is the default: a fresh id")),
    }


@pytest.mark.parametrize(("name", "why"), BAD_NAMES, ids=[w for _, w in BAD_NAMES])
def test_a_bad_signal_query_or_update_name_is_refused_saying_why(kit: TestEnvironment, name: Any, why: str) -> None:
    client = kit.client()
    client.start(with_handlers, id="wh")
    kit.run_until_idle()
    for call, send in calls_with_a_name(client).items():
        with pytest.raises(pf.DefinitionError, match=why if call != "update_id" or name is not None else "default"):
            send(name)
    assert client.query("wh", "notes") == []  # nothing of it reached the workflow
    assert client.status("wh").status == "RUNNING"


@pytest.mark.parametrize(("workflow_id", "why"), BAD_IDS, ids=[w for _, w in BAD_IDS])
def test_a_bad_workflow_id_is_refused_by_every_call_saying_why(kit: TestEnvironment, workflow_id: Any,
                                                               why: str) -> None:
    client = kit.client()
    calls: list[Callable[[], Any]] = [
        lambda: client.start(named, "go", id=workflow_id), lambda: client.signal(workflow_id, "go"),
        lambda: client.status(workflow_id), lambda: client.cancel(workflow_id), lambda: client.retry(workflow_id),
        lambda: client.query(workflow_id, "q"), lambda: client.update(workflow_id, "u"),
        lambda: client.signal_with_start(named, "go", id=workflow_id, signal="go"),
        lambda: client.update_with_start(with_handlers, id=workflow_id, update="note", update_args=("x",)),
        lambda: client.get_handle(workflow_id).result(timeout=1),
    ]
    for call in calls:
        with pytest.raises(LimitExceededError, match=why):
            call()


def test_with_start_without_an_id_is_refused(kit: TestEnvironment) -> None:
    client = kit.client()
    with pytest.raises(pf.DefinitionError, match="signal_with_start needs id="):
        client.signal_with_start(named, "go", id=None, signal="go")  # type: ignore[arg-type]
    with pytest.raises(pf.DefinitionError, match="update_with_start needs id="):
        client.update_with_start(with_handlers, id=None, update="note")  # type: ignore[arg-type]


def test_update_args_given_as_a_string_are_refused_rather_than_spread(kit: TestEnvironment) -> None:
    client = kit.client()
    with pytest.raises(pf.DefinitionError, match=r"write update_args=\('apple',\)"):
        client.update_with_start(with_handlers, id="wh2", update="note", update_args="apple")
    handle, count = client.update_with_start(with_handlers, id="wh2", update="note", update_args=["apple"])
    assert count == 1 and client.query("wh2", "notes") == ["apple"]
    client.signal(handle.id, "done", "ok")
    assert handle.result() == "ok"


def test_other_arguments_of_the_wrong_type_are_named(kit: TestEnvironment) -> None:
    client = kit.client()
    client.start(named, "go", id="n1")
    with pytest.raises(pf.DefinitionError, match="the reason of a cancel must be a string, got int"):
        client.cancel("n1", 5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="is not of the form '<workflow id>/<position>'"):
        client.retry_task(5)  # type: ignore[arg-type]
    client.signal("n1", "go", "still fine")
    assert client.get_handle("n1").result() == "still fine"


ENCODABLE = st.text(min_size=1, max_size=60).filter(lambda s: not any(0xD800 <= ord(c) <= 0xDFFF for c in s))


@settings(max_examples=25, deadline=None)
@given(ENCODABLE)
def test_any_valid_name_reaches_the_wait_of_that_name(name: str) -> None:
    env = TestEnvironment(named)
    try:
        client = env.client()
        handle = client.start(named, name, id="any-name")
        client.signal("any-name", name + "-not-it", "wrong")  # buffered: another name
        client.signal("any-name", name, "right")
        assert handle.result() == "right"
    finally:
        env.close()


# -- workflow code that passes a bad name blocks its run with the reason ---------------------------------


@pf.workflow
async def bad_signal_name(ctx: pf.WorkflowContext) -> str:
    return str(await ctx.wait_signal(5))  # type: ignore[arg-type]


@pf.workflow
async def bad_query_name(ctx: pf.WorkflowContext) -> str:
    ctx.on_query(None, lambda: 1)  # type: ignore[arg-type]
    return str(await ctx.wait_signal("x"))


@pf.workflow
async def bad_handler(ctx: pf.WorkflowContext) -> str:
    ctx.on_update("add", 5)  # type: ignore[arg-type]
    return str(await ctx.wait_signal("x"))


@pytest.mark.parametrize(("workflow", "why"), [
    (bad_signal_name, "the name of a signal to wait for must be a string, got int 5"),
    (bad_query_name, "a query name must be a string, got NoneType"),
    (bad_handler, "the handler of update 'add' must be a function, got int"),
])
def test_workflow_code_passing_a_bad_name_blocks_with_the_reason(kit: TestEnvironment, workflow: Any,
                                                                 why: str) -> None:
    with pytest.raises(pf.WorkflowBlockedError, match=why):
        kit.client().start(workflow).result(timeout=10)
