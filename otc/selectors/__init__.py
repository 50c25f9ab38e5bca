"""Reads of OTC data for the API, the admin and commands, point in time throughout.

``as_of=None`` is now; an aware datetime is what Market Spine knew then (docs/otc.md,
"Point in time"). Querysets come back unevaluated.
"""

from otc.selectors.analytics import (
    latest_week,
    quality_report,
    quality_reports,
    symbol_rolling,
    symbol_summaries,
    symbol_venues,
    venue_rolling,
    venue_shares,
    venue_shares_across_tiers,
    venue_shares_with_rolling,
    venue_volumes,
    venues,
    week_symbol_summaries,
    weeks_held,
)
from otc.selectors.captures import (
    available_weeks,
    capture_versions,
    captures,
    current_capture,
    current_captures,
    latest_quality_report,
    pending_capture_counts,
    raw_rows,
    rejects,
    with_latest_report,
)
from otc.selectors.pages import (
    week_symbol_count,
    week_symbol_page,
    week_venue_count,
    week_venue_page,
)

__all__ = [
    "available_weeks",
    "capture_versions",
    "captures",
    "current_capture",
    "current_captures",
    "latest_quality_report",
    "latest_week",
    "pending_capture_counts",
    "quality_report",
    "quality_reports",
    "raw_rows",
    "rejects",
    "symbol_rolling",
    "symbol_summaries",
    "symbol_venues",
    "venue_rolling",
    "venue_shares",
    "venue_shares_across_tiers",
    "venue_shares_with_rolling",
    "venue_volumes",
    "venues",
    "week_symbol_count",
    "week_symbol_page",
    "week_symbol_summaries",
    "week_venue_count",
    "week_venue_page",
    "weeks_held",
    "with_latest_report",
]
