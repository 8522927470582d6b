"""Long tasks on Pulsar Functions: a silent attempt fails on its heartbeat timeout and the next
one starts from the details it last reported; a task completed from outside with its token."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import pulsarflow as pf
from tests.integration.conftest import connected, deployed_app, wait_for

pytestmark = pytest.mark.pulsar
MODULE = "tests.integration.task_flows"


@pytest.fixture(scope="module")
def app(pulsar_admin: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    functions = [{"name": "{app}-workflow-engine", "engine": "workflow"},
                 {"name": "{app}-executor-long", "engine": "executor", "service": "longtasks"}]
    with deployed_app(pulsar_admin, tmp_path_factory.mktemp("tasks"), [MODULE], functions, prefix="lt") as manifest:
        yield manifest


def test_a_silent_attempt_times_out_and_the_next_resumes_from_its_heartbeat(app: Any) -> None:
    with connected(app.topics, modules=(MODULE,)) as client:
        result = client.start("resumable", 10, id=f"hb-{time.time_ns()}").result(timeout=120)
    assert result == "attempt 2 resumed from {'done': 5}"


def test_a_task_completed_and_one_failed_from_outside_with_their_tokens(app: Any, tmp_path: Path) -> None:
    folder = tmp_path / "tokens"
    folder.mkdir()
    with connected(app.topics, modules=(MODULE,)) as client:
        first = client.start("asking", str(folder), "ship?", id=f"ask-{time.time_ns()}")
        [token] = wait_for(lambda: [p.read_text() for p in folder.glob("token-*[0-9]")] or None, 60, "the task's token")
        client.complete_task(token, "yes")
        assert first.result(timeout=60) == "ship? -> yes"
        with pytest.raises(pf.ControlRefusedError):
            client.complete_task(token, "again")  # used: the step no longer waits for it

        for path in folder.iterdir():
            path.unlink()
        second = client.start("asking", str(folder), "refund?", id=f"ask-{time.time_ns()}")
        [token] = wait_for(lambda: [p.read_text() for p in folder.glob("token-*[0-9]")] or None, 60, "the task's token")
        client.fail_task(token, "no budget left")
        assert second.result(timeout=60) == "refused: no budget left"
