"""Cron expressions: five fields, ``minute hour day-of-month month day-of-week``, in UTC.

Each field is ``*``, a number, a name (``JAN``-``DEC`` for months, ``SUN``-``SAT`` for days
of the week, any case), a range ``1-5``, a step ``*/15``, ``1-30/10`` or ``5/10`` (from 5 to
the field's maximum), or a comma-separated list of those. Day of week 0 and 7 are Sunday.
``@yearly``, ``@monthly``, ``@weekly``, ``@daily`` and ``@hourly`` stand for their usual
expressions.

Days follow the classic cron rule: when both day fields are restricted (neither starts
with ``*``), a day matches if *either* matches; otherwise both must match.
"""

from __future__ import annotations

import bisect
import calendar
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from pulsarflow.errors import ScheduleError

MACROS = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}
_MONTHS = {name.upper(): i for i, name in enumerate(calendar.month_abbr) if name}
_WEEKDAYS = {name: i for i, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))}
_MINUTE = dt.timedelta(minutes=1)
_MAX_STEPS = 100_000  # jumps of a month, day, hour or minute: covers the 8-year gap between two Feb 29ths


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: dict[str, int]

    def describe(self) -> str:
        named = f", a name ({', '.join(self.names)})" if self.names else ""
        return (f"a number from {self.low} to {self.high}{named}, '*', a list '1,15', a range '1-5' "
                "or a step '*/15'")


_FIELDS = (
    _Field("minute", 0, 59, {}),
    _Field("hour", 0, 23, {}),
    _Field("day-of-month", 1, 31, {}),
    _Field("month", 1, 12, _MONTHS),
    _Field("day-of-week", 0, 7, _WEEKDAYS),
)


@dataclass(frozen=True)
class CronExpression:
    """A parsed cron expression; ``next_after`` gives its fire times."""

    text: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 is Sunday
    days_restricted: bool
    weekdays_restricted: bool

    @classmethod
    def parse(cls, text: str) -> CronExpression:
        """Parse ``text``; raises ScheduleError naming the bad field and what it accepts."""
        if not isinstance(text, str):
            raise ScheduleError(f"a cron expression is a string such as '0 3 * * *', got {text!r}")
        fields = MACROS.get(text.strip().lower(), text).split()
        if len(fields) != len(_FIELDS):
            raise ScheduleError(
                f"cron expression {text!r} has {len(fields)} field(s); it needs 5: minute hour day-of-month "
                "month day-of-week, e.g. '0 3 * * *' for 03:00 UTC every day (or a macro: "
                f"{', '.join(MACROS)})")
        minutes, hours, days, months, weekdays = (
            _parse_field(text, spec, value) for spec, value in zip(_FIELDS, fields))
        expression = cls(
            text=text, minutes=tuple(sorted(minutes)), hours=tuple(sorted(hours)), days=frozenset(days),
            months=frozenset(months), weekdays=frozenset(d % 7 for d in weekdays),
            days_restricted=not fields[2].startswith("*"), weekdays_restricted=not fields[4].startswith("*"),
        )
        expression._check_possible()
        return expression

    def matches_day(self, day: dt.date) -> bool:
        in_days = day.day in self.days
        in_weekdays = (day.isoweekday() % 7) in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return day.month in self.months and (in_days or in_weekdays)
        return day.month in self.months and in_days and in_weekdays

    def matches(self, when: dt.datetime) -> bool:
        """Whether ``when`` (its minute, in UTC) is one of the fire times."""
        when = _utc(when)
        return self.matches_day(when.date()) and when.hour in self.hours and when.minute in self.minutes

    def next_after(self, when: dt.datetime) -> dt.datetime:
        """The first fire time strictly after ``when`` (a timezone-aware datetime), in UTC."""
        t = _utc(when).replace(second=0, microsecond=0) + _MINUTE
        for _ in range(_MAX_STEPS):
            if t.month not in self.months:
                t = _first_of_next_month(t)
            elif not self.matches_day(t.date()) or (hour := _first_at_least(self.hours, t.hour)) is None:
                t = _next_midnight(t)
            elif hour != t.hour:
                t = t.replace(hour=hour, minute=0)
            elif (minute := _first_at_least(self.minutes, t.minute)) is None:
                t = t.replace(minute=0) + dt.timedelta(hours=1)
            else:
                return t.replace(minute=minute)
        raise ScheduleError(f"cron expression {self.text!r} has no fire time after {when.isoformat()}")

    def _check_possible(self) -> None:
        if not self.days_restricted or self.weekdays_restricted:
            return  # any day of a month, or either-day matching: some day always matches
        longest = {month: calendar.monthrange(2024, month)[1] for month in self.months}  # 2024: Feb has 29
        if not any(day <= longest[month] for month in self.months for day in self.days):
            raise ScheduleError(
                f"cron expression {self.text!r} never fires: no month it allows has day "
                f"{', '.join(map(str, sorted(self.days)))}; check the day-of-month and month fields")


def _parse_field(text: str, field: _Field, value: str) -> set[int]:
    values: set[int] = set()
    for part in value.split(","):
        values.update(_parse_part(text, field, value, part))
    return values


def _parse_part(text: str, field: _Field, value: str, part: str) -> range:
    def bad(reason: str) -> ScheduleError:
        return ScheduleError(f"cron expression {text!r}: {field.name} field {value!r}: {reason}; "
                             f"write the {field.name} as {field.describe()}")

    if not part:
        raise bad("an empty item in the list")
    base, slash, step_text = part.partition("/")
    step = 1
    if slash:
        if not step_text.isdigit() or int(step_text) < 1:
            raise bad(f"step {step_text!r} is not a whole number of at least 1")
        step = int(step_text)
    if base == "*":
        low, high = field.low, 6 if field.name == "day-of-week" else field.high
    elif "-" in base:
        first, _, last = base.partition("-")
        low, high = _number(first, field, bad), _number(last, field, bad)
        if low > high:
            raise bad(f"range {base!r} goes backwards; write it low-high")
    else:
        low = _number(base, field, bad)
        high = field.high if slash else low
    return range(low, high + 1, step)


def _number(token: str, field: _Field, bad: Callable[[str], ScheduleError]) -> int:
    if token.isdigit():
        number = int(token)
    elif token.upper() in field.names:
        number = field.names[token.upper()]
    else:
        raise bad(f"{token!r} is not a number" + (" or a name" if field.names else ""))
    if not field.low <= number <= field.high:
        raise bad(f"{number} is out of range {field.low}-{field.high}")
    return number


def _utc(when: dt.datetime) -> dt.datetime:
    if not isinstance(when, dt.datetime) or when.tzinfo is None:
        raise ScheduleError(f"pass a timezone-aware datetime (e.g. datetime.now(timezone.utc)), got {when!r}")
    return when.astimezone(dt.timezone.utc)


def _first_at_least(sorted_values: tuple[int, ...], low: int) -> int | None:
    index = bisect.bisect_left(sorted_values, low)
    return sorted_values[index] if index < len(sorted_values) else None


def _next_midnight(t: dt.datetime) -> dt.datetime:
    return t.replace(hour=0, minute=0) + dt.timedelta(days=1)


def _first_of_next_month(t: dt.datetime) -> dt.datetime:
    year, month = (t.year + 1, 1) if t.month == 12 else (t.year, t.month + 1)
    return t.replace(year=year, month=month, day=1, hour=0, minute=0)
