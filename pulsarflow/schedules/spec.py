"""What a schedule is: a workflow to start, when (cron or interval) and what to do on overlap.

A ``ScheduleSpec`` travels as the scheduler workflow's argument, so it holds only JSON
values (times as datetimes, the interval in milliseconds). Every check lives in
``validate``, run by the client before anything is sent.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from typing import Any

from pulsarflow.errors import ScheduleError
from pulsarflow.schedules.cron import CronExpression

SKIP = "skip"              # a fire while the previous run still runs is dropped
BUFFER_ONE = "buffer_one"  # it waits for the previous run to end; at most one waits
ALLOW_ALL = "allow_all"    # it starts at once, beside the runs still going
OVERLAP_POLICIES = (SKIP, BUFFER_ONE, ALLOW_ALL)
MIN_INTERVAL_MS = 1_000


@dataclass(frozen=True)
class ScheduleSpec:
    name: str
    workflow: str
    args: list[Any] = field(default_factory=list)
    cron: str | None = None
    every_ms: int | None = None
    overlap: str = SKIP
    start_at: dt.datetime | None = None  # no fire before it; an interval counts from it
    timeout_ms: int | None = None        # of each run of the workflow

    def validate(self) -> ScheduleSpec:
        """This spec, checked; raises ScheduleError saying what is wrong and how to fix it."""
        if not isinstance(self.name, str) or not self.name or self.name != self.name.strip():
            raise ScheduleError(f"a schedule name is a non-empty string without surrounding spaces, got {self.name!r}")
        if (self.cron is None) == (self.every_ms is None):
            raise ScheduleError(f"schedule {self.name!r} needs exactly one of cron='0 3 * * *' or every=<seconds>")
        _check(self.name, self.cron, self.every_ms, self.overlap, self.start_at)
        return self

    def next_fire(self, after: dt.datetime, anchor: dt.datetime) -> dt.datetime:
        """The first fire time strictly after ``after``; an interval counts from ``anchor``."""
        if self.start_at is not None and self.start_at > after:
            after = self.start_at - dt.timedelta(microseconds=1)  # start_at itself may fire
        if self.cron is not None:
            return CronExpression.parse(self.cron).next_after(after)
        every = dt.timedelta(milliseconds=self.every_ms or MIN_INTERVAL_MS)
        if after < anchor:
            return anchor
        return anchor + every * ((after - anchor) // every + 1)

    def interval_anchor(self, now: dt.datetime) -> dt.datetime:
        """Where an interval counts from when it is set at ``now``."""
        return self.start_at if self.start_at is not None else now

    def changed(self, changes: ScheduleChanges) -> ScheduleSpec:
        """This spec with ``changes`` applied (a cron replaces an interval and the other way round)."""
        spec = self
        if changes.cron is not None:
            spec = replace(spec, cron=changes.cron, every_ms=None)
        if changes.every_ms is not None:
            spec = replace(spec, cron=None, every_ms=changes.every_ms)
        if changes.overlap is not None:
            spec = replace(spec, overlap=changes.overlap)
        if changes.args is not None:
            spec = replace(spec, args=list(changes.args))
        if changes.start_at is not None:
            spec = replace(spec, start_at=changes.start_at)
        return spec


@dataclass(frozen=True)
class ScheduleChanges:
    """What ``Schedules.update`` changes; None leaves a field as it is."""

    cron: str | None = None
    every_ms: int | None = None
    overlap: str | None = None
    args: list[Any] | None = None
    start_at: dt.datetime | None = None

    def validate(self, name: str) -> ScheduleChanges:
        """These changes, checked; raises ScheduleError saying what is wrong and how to fix it."""
        if self == ScheduleChanges():
            raise ScheduleError(f"nothing to update in schedule {name!r}: pass cron=, every=, overlap=, args= "
                                "or start_at=")
        if self.cron is not None and self.every_ms is not None:
            raise ScheduleError(f"schedule {name!r} takes one of cron= or every=, not both")
        _check(name, self.cron, self.every_ms, self.overlap, self.start_at)
        return self

    def touches_timing(self) -> bool:
        return self.cron is not None or self.every_ms is not None or self.start_at is not None


def _check(name: str, cron: str | None, every_ms: int | None, overlap: str | None,
           start_at: dt.datetime | None) -> None:
    if cron is not None:
        CronExpression.parse(cron)
    if every_ms is not None and every_ms < MIN_INTERVAL_MS:
        raise ScheduleError(f"schedule {name!r}: every={every_ms / 1000:g}s is too short; "
                            f"use at least {MIN_INTERVAL_MS / 1000:g} second(s)")
    if overlap is not None and overlap not in OVERLAP_POLICIES:
        raise ScheduleError(f"schedule {name!r}: overlap={overlap!r} is not a policy; "
                            f"use one of {', '.join(repr(p) for p in OVERLAP_POLICIES)}")
    if start_at is not None and (not isinstance(start_at, dt.datetime) or start_at.tzinfo is None):
        raise ScheduleError(f"schedule {name!r}: start_at must be a timezone-aware datetime, "
                            f"e.g. datetime(2030, 1, 1, tzinfo=timezone.utc); got {start_at!r}")


def interval_ms(every: float | dt.timedelta | None) -> int | None:
    """``every=`` (seconds or a timedelta) as milliseconds; a clear error for anything else."""
    if every is None:
        return None
    if isinstance(every, dt.timedelta):
        return int(every.total_seconds() * 1000)
    if isinstance(every, bool) or not isinstance(every, (int, float)):
        raise ScheduleError(f"every= takes seconds (a number) or a timedelta, got {every!r}")
    return int(round(every * 1000))
