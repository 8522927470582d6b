"""Clocks. Engines never read one: the runtime passes ``now`` in."""

from __future__ import annotations

import time
from typing import Protocol

_wall_time = time.time  # bound at import, before workflow guards are installed
_sleep = time.sleep
_monotonic = time.monotonic


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
    """Time that moves only when told to: timers of days pass in no time.

    ``sleep_until`` and ``advance`` only move the clock; ``TestEnvironment.advance`` also
    runs the work that falls due on the way.
    """

    def __init__(self, start_ms: int = 1_767_225_600_000) -> None:  # 2026-01-01T00:00:00Z
        self._now = start_ms

    def now_ms(self) -> int:
        return self._now

    def sleep_until(self, at_ms: int) -> None:
        self._now = max(self._now, at_ms)

    def advance(self, seconds: float) -> None:
        self._now += int(seconds * 1000)


class WallTimer:
    """Real seconds since it was made, against an optional limit, whatever clock the engines run on.

    A client's ``timeout`` is measured with it, so that on a virtual clock the timeout still
    bounds how long the caller waits, while timers of days pass in between.
    """

    def __init__(self, limit_s: float | None = None) -> None:
        self.limit_s = limit_s
        self._start = _monotonic()

    def elapsed_s(self) -> float:
        return _monotonic() - self._start

    def expired(self) -> bool:
        return self.limit_s is not None and self.elapsed_s() >= self.limit_s

    def remaining_ms(self) -> int | None:
        """Milliseconds left before the limit (never below 0); None without a limit."""
        return None if self.limit_s is None else max(0, int((self.limit_s - self.elapsed_s()) * 1000))
