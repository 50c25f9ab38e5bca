"""FINRA reporting weeks: week arithmetic, the accepted range, and the newest published week.

FINRA reports OTC volume per week, identified by the week's Monday (``weekStartDate``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

from otc.parser import parse_tier
from spine.time import parse_date, utc_now

__all__ = [
    "FIRST_WEEK",
    "PUBLICATION_DELAY_WEEKS",
    "WEEK",
    "current_week",
    "iter_weeks",
    "reporting_week",
    "scheduled_week",
    "week_end",
    "week_start",
    "weeks_between",
]

WEEK = timedelta(days=7)
#: The first reporting week (its Monday) of 2014, the year FINRA's OTC transparency
#: data starts; earlier weeks hold no FINRA data.
FIRST_WEEK = date(2014, 1, 6)
#: FINRA's publication delay per tier, in weeks after the reporting week ends.
PUBLICATION_DELAY_WEEKS = {"T1": 2, "T2": 4, "OTC": 4}


def week_start(day: date | datetime) -> date:
    """The Monday (FINRA ``weekStartDate``) of the week containing ``day``."""
    if isinstance(day, datetime):
        day = day.astimezone(UTC).date() if day.tzinfo else day.date()
    return day - timedelta(days=day.weekday())


def week_end(day: date | datetime) -> date:
    """The Sunday that closes the week containing ``day`` (``date.max`` for the last,
    unfinished week of the calendar, which has no Sunday)."""
    monday = week_start(day)
    return monday + timedelta(days=6) if monday <= date.max - timedelta(days=6) else date.max


def current_week() -> date:
    """The Monday of the current week (UTC)."""
    return week_start(utc_now())


def iter_weeks(start: date | datetime, end: date | datetime) -> Iterator[date]:
    """Every week's Monday from the week of ``start`` through the week of ``end``."""
    first, last = week_start(start), week_start(end)
    if first > last:
        raise ValueError(f"range start {first} is after its end {last}")
    current = first
    while True:
        yield current
        if current >= last:
            return
        current += WEEK


def weeks_between(start: date | datetime, end: date | datetime) -> int:
    """How many reporting weeks ``iter_weeks(start, end)`` yields."""
    return (week_start(end) - week_start(start)).days // 7 + 1


def reporting_week(day: date | str) -> date:
    """The Monday of ``day``'s week, if FINRA can have data for it by now.

    Raises ``ValueError`` with a one-line reason for a week before :data:`FIRST_WEEK`
    or after the current week (the current week itself is accepted).
    """
    given = parse_date(day)
    monday = week_start(given)
    named = f"week {monday}" if given == monday else f"{given} (week {monday})"
    if monday < FIRST_WEEK:
        raise ValueError(f"{named} is before {FIRST_WEEK}, FINRA's first reporting week")
    current = current_week()
    if monday > current:
        raise ValueError(f"{named} is in the future: the current week is {current}")
    return monday


def scheduled_week(tier: str, today: date | None = None) -> date:
    """The newest reporting week FINRA has published for ``tier`` by ``today``.

    A week W (its Monday) ends on Friday W+4; T1 appears about two weeks later, on
    Monday W+21, and T2/OTC about four weeks later, on Monday W+35. So on any day of
    the week starting Monday M, the newest published week is M − (delay + 1) weeks.
    The weekly schedule runs on Tuesdays, a day after publication.
    """
    code = parse_tier(tier)
    monday = week_start(today or utc_now().date())
    return monday - timedelta(weeks=PUBLICATION_DELAY_WEEKS[code] + 1)
