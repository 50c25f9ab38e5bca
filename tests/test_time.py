"""Time helpers: aware datetimes and FINRA week arithmetic."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from otc.weeks import current_week, iter_weeks, week_end, week_start, weeks_between
from spine.time import ago, format_iso, format_shown, from_now, parse_date, parse_iso, utc_now

pytestmark = pytest.mark.embedded


def test_utc_now_is_aware_utc() -> None:
    now = utc_now()
    assert now.tzinfo is not None
    assert now.utcoffset() == timedelta(0)


def test_ago_and_from_now() -> None:
    before = utc_now()
    past = ago(days=1, hours=2)
    future = from_now(minutes=5, seconds=30)
    after = utc_now()
    assert before - timedelta(days=1, hours=2) - timedelta(seconds=1) <= past
    assert past <= after - timedelta(days=1, hours=2)
    assert before + timedelta(minutes=5, seconds=30) <= future
    assert future.tzinfo is not None and past.tzinfo is not None


def test_parse_and_format_iso_round_trip() -> None:
    assert parse_iso("2025-12-15T10:30:00Z") == datetime(2025, 12, 15, 10, 30, tzinfo=UTC)
    assert parse_iso("2025-12-15T05:30:00-05:00") == datetime(2025, 12, 15, 10, 30, tzinfo=UTC)
    assert parse_iso("2025-12-15") == datetime(2025, 12, 15, tzinfo=UTC)
    stamp = datetime(2025, 12, 15, 10, 30, 1, 5, tzinfo=UTC)
    assert format_iso(stamp) == "2025-12-15T10:30:01.000005Z"
    assert parse_iso(format_iso(stamp)) == stamp


@pytest.mark.parametrize("bad", ["", "yesterday", "2025-13-01", "12/15/2025"])
def test_parse_iso_rejects_garbage(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_iso(bad)


def test_format_iso_refuses_naive() -> None:
    with pytest.raises(ValueError, match="naive"):
        format_iso(datetime(2025, 1, 1))  # noqa: DTZ001


def test_parse_date() -> None:
    assert parse_date("2025-12-17") == date(2025, 12, 17)
    assert parse_date(date(2025, 1, 2)) == date(2025, 1, 2)
    assert parse_date("2025-12-17T23:00:00-05:00") == date(2025, 12, 18)
    with pytest.raises(ValueError, match="not a date"):
        parse_date("17 Dec")


@pytest.mark.parametrize(
    ("day", "monday"),
    [
        (date(2025, 12, 15), date(2025, 12, 15)),  # a Monday is its own week start
        (date(2025, 12, 21), date(2025, 12, 15)),  # Sunday closes the week
        (date(2026, 1, 1), date(2025, 12, 29)),  # week straddling the year end
        (date(2027, 1, 3), date(2026, 12, 28)),
        (date(2024, 2, 29), date(2024, 2, 26)),  # leap day
    ],
)
def test_week_start(day: date, monday: date) -> None:
    assert week_start(day) == monday
    assert week_end(day) == monday + timedelta(days=6)


def test_week_start_of_aware_datetime_across_dst() -> None:
    new_york = ZoneInfo("America/New_York")
    # 2025-03-09 is the US spring-forward Sunday; 23:30 local is Monday in UTC.
    late_sunday = datetime(2025, 3, 9, 23, 30, tzinfo=new_york)
    assert week_start(late_sunday) == date(2025, 3, 10)
    # 2025-11-02 is the fall-back Sunday; 18:00 local is still Sunday in UTC.
    assert week_start(datetime(2025, 11, 2, 18, 0, tzinfo=new_york)) == date(2025, 10, 27)


def test_iter_weeks_across_year_end() -> None:
    weeks = list(iter_weeks(date(2025, 12, 17), date(2026, 1, 14)))
    assert weeks == [
        date(2025, 12, 15),
        date(2025, 12, 22),
        date(2025, 12, 29),
        date(2026, 1, 5),
        date(2026, 1, 12),
    ]
    assert weeks_between(date(2025, 12, 17), date(2026, 1, 14)) == 5
    assert all(w.weekday() == 0 for w in weeks)


def test_iter_weeks_rejects_reversed_range() -> None:
    with pytest.raises(ValueError, match="after its end"):
        list(iter_weeks(date(2026, 1, 14), date(2025, 12, 1)))


@pytest.mark.parametrize("day", [date.min, date(1, 1, 7), date(9999, 12, 27), date.max])
def test_week_arithmetic_at_the_ends_of_the_calendar_never_overflows(day: date) -> None:
    monday = week_start(day)
    assert monday.weekday() == 0 and monday <= day
    assert day <= week_end(day) <= date.max
    assert list(iter_weeks(day, day)) == [monday]
    assert weeks_between(day, day) == 1


def test_iter_weeks_to_the_last_week_of_the_calendar_stops_there() -> None:
    weeks = list(iter_weeks(date(9999, 12, 10), date.max))
    assert weeks == [date(9999, 12, 6), date(9999, 12, 13), date(9999, 12, 20), date(9999, 12, 27)]
    assert list(iter_weeks(date.min, date(1, 1, 14))) == [date(1, 1, 1), date(1, 1, 8)]
    assert weeks_between(date.min, date.max) == 521723


def test_week_end_is_the_sunday_or_the_last_day_there_is() -> None:
    assert week_end(date(2025, 12, 17)) == date(2025, 12, 21)
    assert week_end(date(9999, 12, 27)) == date.max


def test_current_week_is_this_weeks_monday() -> None:
    before = utc_now().date()
    monday = current_week()
    after = utc_now().date()
    assert monday.weekday() == 0
    assert monday in (week_start(before), week_start(after))  # the clock may pass midnight


def test_unparseable_values_are_quoted_briefly() -> None:
    with pytest.raises(ValueError) as caught:
        parse_date("x" * 1_000_000)
    assert len(str(caught.value)) < 300
    with pytest.raises(ValueError) as caught:
        parse_iso("\x00" + "y" * 1_000_000)
    assert str(caught.value).startswith("'\\x00yyy") and len(str(caught.value)) < 300


def test_format_shown_has_seconds_and_the_zone() -> None:
    moment = datetime(2025, 10, 6, 14, 3, 27, 123456, tzinfo=UTC)
    assert format_shown(moment) == "2025-10-06 14:03:27 UTC"
    with pytest.raises(ValueError, match="naive"):
        format_shown(moment.replace(tzinfo=None))
