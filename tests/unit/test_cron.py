"""The cron parser, fire-time computation (cron and interval) and the errors bad input gets."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pulsarflow.errors import ScheduleError
from pulsarflow.schedules.cron import CronExpression
from pulsarflow.schedules.spec import ScheduleSpec

UTC = dt.timezone.utc


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=UTC)


# -- parsing ----------------------------------------------------------------------------------


def test_fields_accept_stars_lists_ranges_steps_and_names() -> None:
    c = CronExpression.parse("*/15 9-17/4 1,15 * *")
    assert c.minutes == (0, 15, 30, 45)
    assert c.hours == (9, 13, 17)
    assert c.days == {1, 15}
    assert c.months == set(range(1, 13)) and c.weekdays == set(range(7))
    named = CronExpression.parse("0 0 * jan,Mar-MAY mon-fri")
    assert named.months == {1, 3, 4, 5} and named.weekdays == {1, 2, 3, 4, 5}
    assert CronExpression.parse("5/20 * * * *").minutes == (5, 25, 45)  # from 5 to the field's end
    assert CronExpression.parse("0 0 * * 7").weekdays == {0}  # 7 is Sunday too
    assert CronExpression.parse("0 0 * * 5-7").weekdays == {5, 6, 0}
    assert CronExpression.parse("0 0 * * */2").weekdays == {0, 2, 4, 6}


@pytest.mark.parametrize(("macro", "same_as"), [
    ("@hourly", "0 * * * *"), ("@daily", "0 0 * * *"), ("@weekly", "0 0 * * 0"),
    ("@monthly", "0 0 1 * *"), ("@yearly", "0 0 1 1 *"), ("@DAILY", "0 0 * * *"),
])
def test_macros_stand_for_their_expressions(macro: str, same_as: str) -> None:
    a, b = CronExpression.parse(macro), CronExpression.parse(same_as)
    assert (a.minutes, a.hours, a.days, a.months, a.weekdays) == (b.minutes, b.hours, b.days, b.months, b.weekdays)


@given(st.sets(st.integers(0, 59), min_size=1), st.sets(st.integers(0, 23), min_size=1))
def test_a_list_parses_to_exactly_its_numbers(minutes: set[int], hours: set[int]) -> None:
    text = f"{','.join(map(str, minutes))} {','.join(map(str, hours))} * * *"
    parsed = CronExpression.parse(text)
    assert set(parsed.minutes) == minutes and set(parsed.hours) == hours


@pytest.mark.parametrize(("text", "message"), [
    ("* * * *", "has 4 field(s); it needs 5: minute hour day-of-month month day-of-week"),
    ("* * * * * *", "has 6 field(s)"),
    ("", "has 0 field(s)"),
    ("60 * * * *", "minute field '60': 60 is out of range 0-59; write the minute as a number from 0 to 59"),
    ("* 24 * * *", "hour field '24': 24 is out of range 0-23"),
    ("* * 0 * *", "day-of-month field '0': 0 is out of range 1-31"),
    ("* * * 13 *", "month field '13': 13 is out of range 1-12"),
    ("* * * * 8", "day-of-week field '8': 8 is out of range 0-7"),
    ("* * * FOO *", "month field 'FOO': 'FOO' is not a number or a name; write the month as a number from 1 "
                    "to 12, a name (JAN, FEB"),
    ("x * * * *", "minute field 'x': 'x' is not a number;"),
    ("*/0 * * * *", "step '0' is not a whole number of at least 1"),
    ("*/a * * * *", "step 'a' is not a whole number"),
    ("10-5 * * * *", "range '10-5' goes backwards; write it low-high"),
    ("1,,2 * * * *", "an empty item in the list"),
    ("* * 30 2 *", "never fires: no month it allows has day 30; check the day-of-month and month fields"),
    ("* * 31 4,6,9,11 *", "never fires"),
])
def test_bad_expressions_name_the_field_and_the_fix(text: str, message: str) -> None:
    with pytest.raises(ScheduleError) as info:
        CronExpression.parse(text)
    assert message in str(info.value)


def test_non_strings_and_naive_datetimes_are_refused() -> None:
    with pytest.raises(ScheduleError, match="a cron expression is a string"):
        CronExpression.parse(5)  # type: ignore[arg-type]
    with pytest.raises(ScheduleError, match="pass a timezone-aware datetime"):
        CronExpression.parse("* * * * *").next_after(dt.datetime(2026, 1, 1))


# -- next fire time ---------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "after", "expected"), [
    ("*/5 * * * *", utc(2026, 1, 1, 10, 3, 59), utc(2026, 1, 1, 10, 5)),
    ("*/5 * * * *", utc(2026, 1, 1, 10, 5), utc(2026, 1, 1, 10, 10)),          # strictly after
    ("0 3 * * *", utc(2026, 12, 31, 3, 0, 1), utc(2027, 1, 1, 3, 0)),          # year rollover
    ("59 23 31 12 *", utc(2026, 12, 31, 23, 59), utc(2027, 12, 31, 23, 59)),
    ("0 0 31 * *", utc(2026, 3, 31, 0, 1), utc(2026, 5, 31)),                  # April has no 31st
    ("0 0 29 2 *", utc(2026, 1, 1), utc(2028, 2, 29)),                         # the next leap year
    ("0 0 29 2 *", utc(2096, 3, 1), utc(2104, 2, 29)),                         # 2100 is not a leap year
    ("0 0 28-31 * *", utc(2026, 2, 27, 12), utc(2026, 2, 28)),
    ("0 12 * * MON-FRI", utc(2026, 1, 2, 12), utc(2026, 1, 5, 12)),           # Friday noon -> Monday
    ("0 0 13 * FRI", utc(2026, 1, 1), utc(2026, 1, 2)),                        # either day field matches
    ("0 0 */10 * FRI", utc(2026, 1, 1), utc(2026, 5, 1)),                      # '*/10' day: both must match
    ("30 * * * *", utc(2026, 6, 30, 23, 45), utc(2026, 7, 1, 0, 30)),          # month rollover by the hour
    ("0 0 1 JAN,JUL *", utc(2026, 1, 1), utc(2026, 7, 1)),
])
def test_next_after(text: str, after: dt.datetime, expected: dt.datetime) -> None:
    assert CronExpression.parse(text).next_after(after) == expected


def test_next_after_converts_other_time_zones_to_utc() -> None:
    paris = dt.timezone(dt.timedelta(hours=1))
    assert CronExpression.parse("0 3 * * *").next_after(dt.datetime(2026, 1, 1, 3, 30, tzinfo=paris)) == \
        utc(2026, 1, 1, 3)


def _oracle(c: CronExpression, after: dt.datetime) -> dt.datetime:
    """The first matching minute after ``after``, by walking days, then hours and minutes."""
    start = after.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    day = start.date()
    for _ in range(366 * 12):
        dom, dow = day.day in c.days, day.isoweekday() % 7 in c.weekdays
        either = c.days_restricted and c.weekdays_restricted
        if day.month in c.months and ((dom or dow) if either else (dom and dow)):
            for hour in range(24):
                for minute in range(60):
                    t = dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)
                    if t >= start and hour in c.hours and minute in c.minutes:
                        return t
        day += dt.timedelta(days=1)
    raise AssertionError("no fire time found")


def _field(values: st.SearchStrategy[set[int]]) -> st.SearchStrategy[str]:
    return st.one_of(st.just("*"), values.map(lambda v: ",".join(map(str, sorted(v)))))


expressions = st.tuples(
    _field(st.sets(st.integers(0, 59), min_size=1, max_size=4)),
    _field(st.sets(st.integers(0, 23), min_size=1, max_size=4)),
    _field(st.sets(st.integers(1, 28), min_size=1, max_size=4)),
    _field(st.sets(st.integers(1, 12), min_size=1, max_size=4)),
    _field(st.sets(st.integers(0, 6), min_size=1, max_size=3)),
).map(" ".join)
instants = st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2090, 1, 1),
                        timezones=st.just(UTC))


@settings(max_examples=150, deadline=None)
@given(expressions, instants)
def test_next_after_is_the_first_matching_minute(text: str, after: dt.datetime) -> None:
    c = CronExpression.parse(text)
    fire = c.next_after(after)
    assert fire > after and fire.second == 0 and c.matches(fire)
    assert fire == _oracle(c, after)


# -- intervals and start_at -------------------------------------------------------------------


def test_an_interval_counts_from_its_anchor_and_never_drifts() -> None:
    spec = ScheduleSpec("i", "w", every_ms=90_000)
    anchor = utc(2026, 1, 1)
    assert spec.next_fire(anchor, anchor) == utc(2026, 1, 1, 0, 1, 30)
    assert spec.next_fire(utc(2026, 1, 1, 0, 1, 30), anchor) == utc(2026, 1, 1, 0, 3)
    assert spec.next_fire(utc(2026, 1, 1, 0, 7, 31), anchor) == utc(2026, 1, 1, 0, 9)  # late: no catch-up
    assert spec.next_fire(utc(2025, 12, 31), anchor) == anchor


def test_start_at_is_the_first_possible_fire() -> None:
    start = utc(2026, 3, 1, 12)
    every = ScheduleSpec("i", "w", every_ms=3_600_000, start_at=start)
    assert every.next_fire(utc(2026, 1, 1), every.interval_anchor(utc(2026, 1, 1))) == start
    cron = ScheduleSpec("c", "w", cron="0 */6 * * *", start_at=start)
    assert cron.next_fire(utc(2026, 1, 1), utc(2026, 1, 1)) == start
    late = ScheduleSpec("c", "w", cron="0 */6 * * *", start_at=start + dt.timedelta(seconds=1))
    assert late.next_fire(utc(2026, 1, 1), utc(2026, 1, 1)) == utc(2026, 3, 1, 18)
