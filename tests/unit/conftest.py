"""Fixtures of the fast unit layer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import pulsarflow as pf
from pulsarflow.clock import VirtualClock
from tests.e2e import flows


@pytest.fixture
def env() -> Iterator[pf.EmbeddedEnvironment]:
    """An embedded runtime on a virtual clock that dead-letters instead of raising (fail_fast off)."""
    environment = pf.EmbeddedEnvironment(*flows.ALL, clock=VirtualClock(), fail_fast=False)
    yield environment
    environment.close()
