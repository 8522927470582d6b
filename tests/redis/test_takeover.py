"""A process killed with SIGKILL leaves its workflows to the next one over the same Redis.

The first process (a subprocess, state and queue in Redis by default) starts four
workflows and is killed while one of its tasks blocks: by then one workflow sleeps on a
timer of an hour, one waits for a task retry due in ten minutes, one waits for a signal,
and one has a task running (the blocked one) and another dispatched but not yet run
(taken with it: the queue takes several messages per round trip). The
test process then takes over with a clock two hours ahead (as after a long outage, so
the timer and the retry are due), sends the signal, and every workflow finishes.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pulsarflow.clock import SystemClock
from pulsarflow.embedded import EmbeddedEnvironment
from pulsarflow.storage.redis import RedisStateStore
from pulsarflow.transport.redis import queue_prefix, sibling_prefix
from tests.redis import takeover_flows as tf
from tests.redis.harness import workflow_state
from tests.redis.support import unique_prefix

pytestmark = pytest.mark.redis
ROOT = Path(__file__).resolve().parents[2]
BOUND_S = 60  # every wait below gives up after this long: the test stops by itself

FIRST_PROCESS = """
import sys
from pulsarflow.embedded import EmbeddedEnvironment
from pulsarflow.storage.redis import RedisStateStore
from tests.redis import takeover_flows as tf

env = EmbeddedEnvironment(*tf.ALL, store=RedisStateStore.from_url(sys.argv[1], prefix=sys.argv[2]), fail_fast=True)
client = env.client()
client.start(tf.retrying, 4, id="retrying")
client.start(tf.sleeping, 3600.0, id="sleeping")
client.start(tf.signalled, id="signalled")
client.start(tf.mid_task, 21, id="mid-task")
env.run_until_idle()  # never returns: the task blocks until the kill
"""


class ShiftedClock(SystemClock):
    """Wall-clock time moved ahead, as if the process started long after the first one died."""

    def __init__(self, ahead_s: float) -> None:
        self.ahead_ms = int(ahead_s * 1000)

    def now_ms(self) -> int:
        return super().now_ms() + self.ahead_ms

    def sleep_until(self, at_ms: int) -> None:
        super().sleep_until(at_ms - self.ahead_ms)


def run_until_blocked(redis_url: str, prefix: str) -> subprocess.Popen[str]:
    """The first process, once its task has blocked (every other message is handled by then)."""
    first = subprocess.Popen([sys.executable, "-c", FIRST_PROCESS, redis_url, prefix], cwd=ROOT, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env={**os.environ, tf.FIRST_PROCESS: "1"})
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in first.stdout or ():
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    try:
        while lines.get(timeout=BOUND_S).strip() != tf.BLOCKED:
            pass
    except queue.Empty:
        first.kill()
        raise AssertionError(f"the first process never blocked; stderr: {first.communicate()[1]}") from None
    return first


def wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + BOUND_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still not so after {BOUND_S}s")
        time.sleep(0.02)


def queue_sizes(store: RedisStateStore) -> dict[str, int]:
    keys = queue_prefix(store.prefix)
    return {"ready": store.client.llen(keys + "ready"), "delayed": store.client.zcard(keys + "delayed"),
            "processing": store.client.llen(keys + "processing")}


@pytest.fixture
def store(redis_url: str) -> Iterator[RedisStateStore]:
    """A store of the test's own; its states, queue and tags are deleted after."""
    store = RedisStateStore.from_url(redis_url, prefix=unique_prefix("takeover"))
    yield store
    for pattern in (store.prefix, queue_prefix(store.prefix), sibling_prefix(store.prefix, "tag")):
        for key in store.client.scan_iter(match=pattern + "*"):
            store.client.delete(key)


def kill_when_blocked(redis_url: str, store: RedisStateStore) -> None:
    first = run_until_blocked(redis_url, store.prefix)
    try:
        # The acknowledgement of the failed attempt, held up by the blocked task, is sent by the keeper thread.
        wait_for(lambda: queue_sizes(store)["processing"] == 2)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=BOUND_S)


def test_a_second_process_finishes_every_workflow_a_killed_one_left(redis_url: str, store: RedisStateStore) -> None:
    kill_when_blocked(redis_url, store)
    # What the kill left: the blocked task and the one taken with it, the timer and the retry delayed.
    assert queue_sizes(store) == {"ready": 0, "delayed": 2, "processing": 2}
    for workflow_id in ("retrying", "sleeping", "signalled", "mid-task"):
        state = workflow_state(store, workflow_id)
        assert state is not None and state.status == "RUNNING", workflow_id
    env = EmbeddedEnvironment(*tf.ALL, store=store, clock=ShiftedClock(2 * 3600), fail_fast=True)
    try:
        client = env.client()
        client.signal("signalled", "go", "approved", timeout=BOUND_S)  # waits for the dead owner's lease first
        results = {workflow_id: client.get_handle(workflow_id).result(timeout=BOUND_S)
                   for workflow_id in ("retrying", "sleeping", "signalled", "mid-task")}
        assert results == {"retrying": 40, "sleeping": "woke up", "signalled": "approved", "mid-task": [42, 22]}
        env.run_until_idle()
        assert env.transport.pending() == 0 and env.dead_letters == []
    finally:
        env.close()
