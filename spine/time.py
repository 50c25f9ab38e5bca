"""Timezone-aware time helpers and FINRA reporting-week arithmetic.

Every timestamp in Market Spine is an aware UTC datetime; these helpers are the one
place that creates them, so naive UTC timestamps never creep back in.
FINRA reports OTC volume per week, identified by the week's Monday
(``weekStartDate``); the week helpers turn any date into that Monday.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

from spine.text import quote

WEEK = timedelta(days=7)


def utc_now() -> datetime:
    """The current time as an aware UTC datetime."""
    return datetime.now(UTC)


def ago(*, days: float = 0, hours: float = 0, minutes: float = 0, seconds: float = 0) -> datetime:
    """An aware UTC datetime the given span before now."""
    return utc_now() - timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def from_now(
    *, days: float = 0, hours: float = 0, minutes: float = 0, seconds: float = 0
) -> datetime:
    """An aware UTC datetime the given span after now."""
    return utc_now() + timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def parse_iso(value: str) -> datetime:
    """Parse an ISO 8601 timestamp into an aware UTC datetime.

    A value without an offset is taken to be UTC (the only zone Market Spine stores);
    a bare date means midnight UTC of that day.
    """
    text = value.strip()
    if not text:
        raise ValueError("empty timestamp")
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{quote(value)} is not an ISO 8601 date or datetime") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def format_iso(value: datetime) -> str:
    """Format an aware datetime as ISO 8601 in UTC with a ``Z`` suffix."""
    if value.tzinfo is None:
        raise ValueError("refusing to format a naive datetime; Market Spine stores aware UTC")
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_date(value: str | date) -> date:
    """Parse an ISO date (``YYYY-MM-DD``); a datetime string contributes its UTC date."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).date() if value.tzinfo else value.date()
    if isinstance(value, date):
        return value
    text = value.strip()
    try:
        return date.fromisoformat(text)
    except ValueError:
        pass
    try:
        return parse_iso(text).date()
    except ValueError:
        raise ValueError(f"{quote(value)} is not a date (expected YYYY-MM-DD)") from None


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
