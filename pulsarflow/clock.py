"""Clocks. Engines never read one: the runtime passes ``now`` in."""

from __future__ import annotations

import time
from typing import Protocol

_wall_time = time.time  # bound at import, before workflow guards are installed
_sleep = time.sleep


class Clock(Protocol):
    def now_ms(self) -> int: ...

    def sleep_until(self, at_ms: int) -> None: ...


class SystemClock:
    """Wall-clock time."""

    def now_ms(self) -> int:
        return int(_wall_time() * 1000)

    def sleep_until(self, at_ms: int) -> None:
        delay = at_ms / 1000 - _wall_time()
        if delay > 0:
            _sleep(delay)


class VirtualClock:
    """Time that moves only when told to: timers of days pass in no time."""

    def __init__(self, start_ms: int = 1_767_225_600_000) -> None:  # 2026-01-01T00:00:00Z
        self._now = start_ms

    def now_ms(self) -> int:
        return self._now

    def sleep_until(self, at_ms: int) -> None:
        self._now = max(self._now, at_ms)

    def advance(self, seconds: float) -> None:
        self._now += int(seconds * 1000)
