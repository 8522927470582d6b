"""Every engine in plain worker processes, in batches, on a real Pulsar with Redis state.

No Function is deployed for this app: the workflow engine, the tag engine and the task
executors are ``pulsarflow worker --engine ...`` subprocesses. Workflows with tasks,
children, signals, tags and a custom id run to their results; SIGTERM stops each worker
cleanly.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pulsarflow.topics import Topics
from tests.e2e import flows
from tests.integration.conftest import SERVICE_URL, connected
from tests.redis.support import require_redis

pytestmark = [pytest.mark.pulsar, pytest.mark.redis]
ROOT = Path(__file__).resolve().parents[2]
MODULE = "tests.e2e.flows"
TIMEOUT = 90


@pytest.fixture(scope="module")
def topics(pulsar_admin) -> Topics:  # type: ignore[no-untyped-def]
    return Topics(app=f"ew{uuid.uuid4().hex[:6]}")


@pytest.fixture(scope="module")
def workers(topics: Topics, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[subprocess.Popen[bytes]]]:
    redis_url = require_redis()
    logs = tmp_path_factory.mktemp("engine-workers")
    processes = []
    for engine in ("workflow", "tag", "executor"):
        command = [sys.executable, "-m", "pulsarflow.cli", "worker", "--engine", engine, "--batch", "50",
                   "--service-url", SERVICE_URL, "--modules", MODULE, "--app", topics.app, "--redis-url", redis_url]
        with (logs / f"{engine}.log").open("wb") as out:
            processes.append(subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT))
    yield processes
    for process in processes:
        process.send_signal(signal.SIGTERM)
    codes = [process.wait(timeout=30) for process in processes]
    assert codes == [0, 0, 0], "\n".join((logs / f"{e}.log").read_text() for e in ("workflow", "tag", "executor"))


@pytest.fixture(scope="module")
def client(topics: Topics, workers):  # type: ignore[no-untyped-def]
    with connected(topics, (MODULE,)) as connection:
        yield connection


def test_many_workflows_run_through_batched_engines(client) -> None:  # type: ignore[no-untyped-def]
    handles = [client.start(flows.sequence, 5) for _ in range(40)] + [client.start(flows.fan, 8) for _ in range(10)]
    assert [h.result(timeout=TIMEOUT) for h in handles[:40]] == [10] * 40
    assert [h.result(timeout=TIMEOUT) for h in handles[40:]] == [[2 * i for i in range(8)]] * 10
    assert client.start(flows.parent, 2).result(timeout=TIMEOUT) == {"a": 1, "b": 3, "c": 6}


def test_signals_tags_and_custom_ids(client) -> None:  # type: ignore[no-untyped-def]
    run = time.time_ns()
    handles = [client.start(flows.inbox, f"u{i}", tags=[f"t-{run}"]) for i in range(5)]
    deadline = time.monotonic() + TIMEOUT
    while len(client.find_ids(f"t-{run}")) < 5 and time.monotonic() < deadline:
        time.sleep(0.2)
    client.signal_tag(f"t-{run}", "message", "batched")
    assert [h.result(timeout=TIMEOUT) for h in handles] == [f"u{i} got batched" for i in range(5)]
    first = client.start(flows.inbox, "one", custom_id=f"c-{run}")
    assert client.start(flows.inbox, "two", custom_id=f"c-{run}").id == first.id
    client.signal(first.id, "message", "hi")
    assert first.result(timeout=TIMEOUT) == "one got hi"
