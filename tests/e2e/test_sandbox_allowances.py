"""What the sandbox lets through while workflow code runs: logging, and finalizers run by the
garbage collector meanwhile; the workflow's own clock reads and I/O are still stopped."""

from __future__ import annotations

import contextlib
import gc
import logging
import socket
import time
from typing import Any

import pytest

import pulsarflow as pf
from pulsarflow.testing import TestEnvironment


@pf.workflow
async def logs(ctx: pf.WorkflowContext) -> str:
    logging.getLogger("tests.sandbox").warning("a line from workflow code")
    return "logged"


class ConnectsWhenCollected:
    """A finalizer that reads the clock and opens a socket, like a client closing a pool."""

    def __init__(self) -> None:
        self.me = self  # a cycle: only the collector frees it

    def __del__(self) -> None:
        time.time()
        with socket.socket() as sock:
            sock.settimeout(0.01)
            with contextlib.suppress(OSError):
                sock.connect(("127.0.0.1", 9))


@pf.workflow
async def collects(ctx: pf.WorkflowContext) -> str:
    ConnectsWhenCollected()
    gc.collect()  # the finalizer runs here, inside workflow code
    return "collected"


@pf.workflow
async def reads_the_clock(ctx: pf.WorkflowContext) -> float:
    return time.time()


@pytest.fixture
def env() -> Any:
    environment = TestEnvironment(logs, collects, reads_the_clock, fail_fast=True)
    yield environment
    environment.close()


def test_logging_in_workflow_code_is_allowed(env: TestEnvironment, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="tests.sandbox"):
        assert env.client().start(logs).result(timeout=30) == "logged"
    assert "a line from workflow code" in caplog.text


def test_a_finalizer_run_during_workflow_code_is_not_the_workflows_doing(env: TestEnvironment) -> None:
    assert env.client().start(collects).result(timeout=30) == "collected"


def test_the_workflows_own_clock_read_still_blocks_it(env: TestEnvironment) -> None:
    with pytest.raises(pf.WorkflowBlockedError, match=r"called time\.time\(\)"):
        env.client().start(reads_the_clock).result(timeout=30)
