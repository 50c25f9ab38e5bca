"""Timezone-aware time helpers: every timestamp in Market Spine is an aware UTC datetime.

FINRA's reporting-week arithmetic lives in :mod:`otc.weeks`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from spine.text import quote


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


def format_shown(value: datetime) -> str:
    """How the console shows a moment: ``2025-10-06 14:03:27 UTC``."""
    if value.tzinfo is None:
        raise ValueError("refusing to format a naive datetime; Market Spine stores aware UTC")
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


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
