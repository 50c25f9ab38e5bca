"""Rolling six-week analytics per symbol and per venue, versioned for point-in-time reads."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from otc.models import (
    Capture,
    SymbolRolling,
    SymbolWeekSummary,
    VenueMarketShare,
    VenueRolling,
)
from otc.services.sql import execute, int_sum, round_div

__all__ = [
    "TREND_BAND_PCT",
    "WINDOW_WEEKS",
    "compute_rolling",
    "window_captures",
    "window_start",
]

WINDOW_WEEKS = 6
#: Trend band in percent: beyond ±10% of the earlier weeks' average is a trend.
TREND_BAND_PCT = 10


def window_start(week: date) -> date:
    """First Monday of the six-week window ending with ``week``."""
    return week - timedelta(weeks=WINDOW_WEEKS - 1)


def compute_rolling(capture: Capture, *, now: datetime) -> dict[str, int]:
    """Replace the anchor capture's rolling rows for symbols and venues."""
    Capture.objects.select_for_update().filter(pk=capture.pk).exists()
    window = window_captures(capture)
    return {
        "symbol_rolling": _roll(capture, window, now, SymbolRolling, SymbolWeekSummary, "symbol"),
        "venue_rolling": _roll(capture, window, now, VenueRolling, VenueMarketShare, "mpid"),
    }


def window_captures(capture: Capture) -> list[int]:
    """Ids of the captures in the anchor's window: the anchor and, for the five weeks
    before it, the captures current now (same tier and ATS flag), at most six.

    Looked up first so the summaries are read by ``capture_id IN (…)``: the planner
    then sees six captures' rows, not a join over the whole history, and reads them
    through the ``(capture_id, …)`` key whether or not the table was vacuumed."""
    earlier = Capture.objects.current().filter(
        tier=capture.tier,
        ats=capture.ats,
        week__gte=window_start(capture.week),
        week__lt=capture.week,
    )
    return [capture.pk, *earlier.order_by("week").values_list("pk", flat=True)]


def _roll(
    capture: Capture,
    window: list[int],
    now: datetime,
    target: type[SymbolRolling] | type[VenueRolling],
    source: type[SymbolWeekSummary] | type[VenueMarketShare],
    key: str,
) -> int:
    target.objects.filter(capture_id=capture.pk, replaced_at__isnull=True).update(replaced_at=now)
    up, down = 100 + TREND_BAND_PCT, 100 - TREND_BAND_PCT
    ids = ", ".join(str(int(pk)) for pk in window)
    return execute(
        f"""
        INSERT INTO {target._meta.db_table}
               (capture_id, week, tier, ats, {key}, window_start, weeks_in_window,
                current_volume, window_volume, avg_volume, avg_trades, trend, computed_at,
                replaced_at)
        SELECT %(capture)s, %(week)s, %(tier)s, %(ats)s, {key}, %(start)s, n, cur, total,
               {round_div("total", "n")}, {round_div("trades", "n")},
               CASE WHEN n = 1 THEN NULL
                    WHEN cur * (n - 1) * 100 > (total - cur) * {up} THEN 'up'
                    WHEN cur * (n - 1) * 100 < (total - cur) * {down} THEN 'down'
                    ELSE 'stable' END,
               %(now)s, NULL
          FROM (SELECT s.{key} AS {key},
                       COUNT(*) AS n,
                       {int_sum("s.total_volume")} AS total,
                       {int_sum("s.total_trades")} AS trades,
                       CAST(MAX(CASE WHEN s.capture_id = %(capture)s THEN s.total_volume END)
                            AS BIGINT) AS cur
                  FROM {source._meta.db_table} s
                 WHERE s.capture_id IN ({ids})
                 GROUP BY s.{key}) w
         WHERE cur IS NOT NULL
         ORDER BY {key}
        """,
        {
            "capture": capture.pk,
            "week": capture.week,
            "tier": capture.tier,
            "ats": capture.ats,
            "start": window_start(capture.week),
            "now": now,
        },
    )
