"""Why a wait for an answer ended without one, in words a person can act on.

The embedded runtime answers ``handle.result(timeout=...)`` by running its engines until
the answer comes, nothing is left to run, or the time is up; :class:`WaitEnd` records which,
and :meth:`WaitEnd.describe` turns it into the end of the error message.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class WaitEnd:
    """How a wait of the embedded loop ended: with its answer (``done``), or why not."""

    done: bool
    stuck: bool  # nothing was left to run in this process: no ready message, no pending timer
    timeout_s: float | None
    elapsed_s: float  # real seconds the wait took
    moved_s: float  # how far the environment's clock moved meanwhile
    virtual: bool  # the clock is a VirtualClock, which skips ahead to each timer

    def describe(self) -> str:
        """Why there was no answer, as words that follow "no answer about workflow 'x'"."""
        if self.stuck:
            return self._stuck()
        if self.virtual:
            return self._timed_out_virtual()
        return (f" within {_seconds(self._limit_s())}: the workflow is still waiting on something "
                "(a timer, a task, a signal or an update); wait longer, or check its status")

    def _stuck(self) -> str:
        when = "at once" if self.elapsed_s < 0.001 else f"after {_seconds(self.elapsed_s)}"
        limit = "" if self.timeout_s is None else f", before its {_seconds(self.timeout_s)} timeout"
        return (f": gave up {when}{limit}, because nothing is left to run in this "
                "process (no message is ready and no timer is pending), so the workflow is waiting on something "
                "only a client can give, such as a signal or an update: send it, then wait for the answer")

    def _limit_s(self) -> float:
        return self.elapsed_s if self.timeout_s is None else self.timeout_s

    def _timed_out_virtual(self) -> str:
        head = (f" within {_seconds(self._limit_s())} of real time (on a virtual clock the timeout counts "
                "wall-clock seconds)")
        if self.moved_s > 0:
            return (f"{head}; meanwhile the virtual clock moved {_span(self.moved_s)} ahead and timers kept firing "
                    "without bringing it (a schedule, or a loop of sleeps?): pass a larger timeout, or check "
                    "the workflow with client.status()")
        return (f"{head}, while messages kept coming at the same virtual time (a loop that never waits?): "
                "check the workflow with client.status()")


def _seconds(seconds: float) -> str:
    """``0.3s``, ``10s``, ``3600s``: at most three decimals, none trailing."""
    return f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"


def _span(seconds: float) -> str:
    """A duration for people: ``45s``, ``1:00:00``, ``30 days, 0:00:00``."""
    return f"{seconds:g}s" if seconds < 60 else str(dt.timedelta(seconds=round(seconds)))
