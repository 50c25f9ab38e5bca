"""Ranges of weeks in one query: a symbol's venue shares, a venue's market share; ATS and
non-ATS as separate series, and a combined one only when asked, labelled as such."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db import connections
from django.db.models import F, OuterRef, QuerySet, Subquery, Sum

from otc.models import VenueMarketShare
from otc.selectors.analytics import venue_shares, venue_volumes

__all__ = [
    "ATS",
    "COMBINED",
    "MAX_RANGE_WEEKS",
    "NON_ATS",
    "SERIES",
    "RangeRows",
    "symbol_venue_share_range",
    "venue_market_share_range",
]

ATS = "ATS"
NON_ATS = "non-ATS"
COMBINED = "combined (ATS + non-ATS)"
#: Series labels by the number the SQL sorts them by: ATS, non-ATS, combined.
SERIES = (ATS, NON_ATS, COMBINED)
#: The longest range a range read answers: five years of weeks.
MAX_RANGE_WEEKS = 261
_Q4 = Decimal("0.0001")


def _pct(part: int, whole: int | None) -> Decimal | None:
    if not whole:
        return None
    return (Decimal(part) * 100 / whole).quantize(_Q4, ROUND_HALF_UP)


def _sql(queryset: QuerySet[Any]) -> tuple[str, tuple[Any, ...]]:
    sql, params = queryset.query.get_compiler(using=queryset.db).as_sql()
    return sql, tuple(params)


class RangeRows:
    """Rows of one range read: ``fetch(offset, limit)`` gives a page and the total (from
    one query), ``count()`` the total, ``iterator()`` every row in order (a server-side
    cursor on PostgreSQL, for CSV). Rows are dicts; ``convert`` finishes each one."""

    def __init__(
        self, sql: str, params: tuple[Any, ...], columns: list[str], convert: Any, using: str
    ) -> None:
        self.using = using
        self.sql = sql
        self.params = params
        self.columns = columns
        self.convert = convert

    def _run(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with connections[self.using].cursor() as cursor:
            cursor.execute(sql, params)
            return list(cursor.fetchall())

    def fetch(self, offset: int, limit: int) -> tuple[list[dict[str, Any]], int | None]:
        sql = f"SELECT r.*, COUNT(*) OVER () FROM ({self.sql}) r LIMIT %s OFFSET %s"
        rows = self._run(sql, (*self.params, limit, offset))
        if not rows:
            return [], None
        return [self._row(row) for row in rows], int(rows[0][-1])

    def __getitem__(self, window: slice) -> list[dict[str, Any]]:
        start = window.start or 0
        return self.fetch(start, window.stop - start)[0] if window.stop > start else []

    def count(self) -> int:
        return int(self._run(f"SELECT COUNT(*) FROM ({self.sql}) r", self.params)[0][0])

    def exists(self) -> bool:
        return bool(self._run(f"SELECT 1 FROM ({self.sql}) r LIMIT 1", self.params))

    def iterator(self, chunk_size: int = 500) -> Iterator[dict[str, Any]]:
        connection = connections[self.using]
        connection.ensure_connection()
        with connection.chunked_cursor() as cursor:
            cursor.execute(self.sql, self.params)
            while batch := cursor.fetchmany(chunk_size):
                for row in batch:
                    yield self._row(row)

    def _row(self, values: tuple[Any, ...]) -> dict[str, Any]:
        row = dict(zip(self.columns, values, strict=False))
        series = int(row.pop("series"))
        row["series"] = SERIES[series]
        row["ats"] = None if series == 2 else series == 0
        return self.convert(row)


def _ats_flags(ats: bool | None) -> tuple[bool | None, bool]:
    """(filter on the ATS flag, whether a combined series is added): ``None`` means both
    summaries, each as its own series, plus the combined one."""
    return ats, ats is None


_SHARE_COLUMNS = [
    "tier",
    "week",
    "series",
    "mpid",
    "venue_name",
    "shares",
    "trades",
    "symbol_volume",
    "rank",
    "capture_id",
]


def symbol_venue_share_range(
    *,
    symbol: str,
    start: date,
    end: date,
    tier: str | None = None,
    ats: bool | None = False,
    as_of: datetime | None = None,
) -> RangeRows:
    """Per week and venue: the venue's ``shares`` and ``trades`` of ``symbol``, its
    ``share`` of the symbol's volume (percent, 4 places, half up) and ``rank`` (1 = most
    volume, ties share a rank), per tier and series, weeks oldest first.

    ``ats`` True or False is that summary alone; ``None`` gives the ATS series, the
    non-ATS series and the combined one (volumes of both summaries added, shares and
    ranks over that sum), each row labelled. Built on :func:`venue_volumes`' output
    fields; one query, window functions per capture (one capture answers per tier,
    week and ATS flag)."""
    flag, combined = _ats_flags(ats)
    base = (
        venue_volumes(symbol=symbol, tier=tier, ats=flag, as_of=as_of)
        .filter(week__gte=start, week__lte=end)
        .order_by()
        .values(
            v_tier=F("tier"),
            v_week=F("week"),
            v_ats=F("ats"),
            v_mpid=F("mpid"),
            v_name=F("venue_name"),
            v_shares=F("share_volume"),
            v_trades=F("trade_count"),
            v_capture=F("capture_id"),
        )
    )
    base_sql, params = _sql(base)
    parts = [
        "SELECT v_tier AS tier, v_week AS week, CASE WHEN v_ats THEN 0 ELSE 1 END AS series, "
        "v_mpid AS mpid, v_name AS venue_name, v_shares AS shares, v_trades AS trades, "
        "SUM(v_shares) OVER (PARTITION BY v_capture) AS symbol_volume, "
        "RANK() OVER (PARTITION BY v_capture ORDER BY v_shares DESC) AS rank, "
        "v_capture AS capture_id FROM base"
    ]
    if combined:
        parts.append(
            "SELECT v_tier, v_week, 2, v_mpid, MAX(v_name), SUM(v_shares), SUM(v_trades), "
            "SUM(SUM(v_shares)) OVER (PARTITION BY v_tier, v_week), "
            "RANK() OVER (PARTITION BY v_tier, v_week ORDER BY SUM(v_shares) DESC), "
            "NULL FROM base GROUP BY v_tier, v_week, v_mpid"
        )
    sql = (
        f"WITH base AS ({base_sql}) SELECT * FROM ({' UNION ALL '.join(parts)}) u "
        "ORDER BY week, tier, series, rank, mpid"
    )
    upper = symbol.strip().upper()

    def convert(row: dict[str, Any]) -> dict[str, Any]:
        row["symbol"] = upper
        for name in ("shares", "trades", "symbol_volume", "rank"):
            row[name] = int(row[name])
        row["share"] = _pct(row["shares"], row["symbol_volume"])
        row["week"] = _date(row["week"])
        return row

    return RangeRows(sql, params, _SHARE_COLUMNS, convert, base.db)


_MARKET_COLUMNS = [
    "tier",
    "week",
    "series",
    "mpid",
    "venue_name",
    "total_volume",
    "total_trades",
    "symbol_count",
    "tier_volume",
    "market_share",
    "rank",
    "capture_id",
]


def venue_market_share_range(
    *,
    mpid: str,
    start: date,
    end: date,
    tier: str | None = None,
    ats: bool | None = False,
    as_of: datetime | None = None,
) -> RangeRows:
    """Per week and tier: the venue's volume, trades, symbols, ``tier_volume`` (all
    venues' volume that week in the series), ``market_share`` (percent) and ``rank``, as
    computed for each capture (:class:`VenueMarketShare`), weeks oldest first.

    ``ats`` ``None`` adds to the ATS and non-ATS series the combined one: the venue's
    volume in both summaries over every venue's volume in both, ranked among all
    venues' combined volume (its ``symbol_count`` is empty: a symbol the venue traded
    in both would count twice). One query."""
    flag, combined = _ats_flags(ats)
    key = mpid.strip().upper()
    tier_total = Subquery(
        VenueMarketShare.objects.filter(capture_id=OuterRef("capture_id"))
        .order_by()
        .values("capture_id")
        .annotate(total=Sum("total_volume"))
        .values("total")
    )
    own = (
        venue_shares(mpid=key, tier=tier, ats=flag, week_from=start, week_to=end, as_of=as_of)
        .order_by()
        .values(
            v_tier=F("tier"),
            v_week=F("week"),
            v_ats=F("ats"),
            v_mpid=F("mpid"),
            v_name=F("venue_name"),
            v_volume=F("total_volume"),
            v_trades=F("total_trades"),
            v_symbols=F("symbol_count"),
            v_tier_volume=tier_total,
            v_share=F("market_share"),
            v_rank=F("rank"),
            v_capture=F("capture_id"),
        )
    )
    own_sql, params = _sql(own)
    parts = [
        "SELECT v_tier AS tier, v_week AS week, CASE WHEN v_ats THEN 0 ELSE 1 END AS series, "
        "v_mpid AS mpid, v_name AS venue_name, v_volume AS total_volume, "
        "v_trades AS total_trades, v_symbols AS symbol_count, v_tier_volume AS tier_volume, "
        "v_share AS market_share, v_rank AS rank, v_capture AS capture_id FROM own"
    ]
    ctes = [f"own AS ({own_sql})"]
    if combined:
        every = (
            venue_shares(tier=tier, week_from=start, week_to=end, as_of=as_of)
            .order_by()
            .values(
                v_tier=F("tier"),
                v_week=F("week"),
                v_mpid=F("mpid"),
                v_name=F("venue_name"),
                v_volume=F("total_volume"),
                v_trades=F("total_trades"),
            )
        )
        every_sql, every_params = _sql(every)
        ctes.append(
            f"every_venue AS ({every_sql}), combined AS ("
            "SELECT v_tier AS tier, v_week AS week, v_mpid AS mpid, MAX(v_name) AS venue_name, "
            "SUM(v_volume) AS total_volume, SUM(v_trades) AS total_trades, "
            "SUM(SUM(v_volume)) OVER (PARTITION BY v_tier, v_week) AS tier_volume, "
            "RANK() OVER (PARTITION BY v_tier, v_week ORDER BY SUM(v_volume) DESC) AS rank "
            "FROM every_venue GROUP BY v_tier, v_week, v_mpid)"
        )
        params = (*params, *every_params)
        parts.append(
            "SELECT tier, week, 2, mpid, venue_name, total_volume, total_trades, NULL, "
            "tier_volume, NULL, rank, NULL FROM combined WHERE mpid = %s"
        )
        params = (*params, key)
    sql = (
        f"WITH {', '.join(ctes)} SELECT * FROM ({' UNION ALL '.join(parts)}) u "
        "ORDER BY week, tier, series"
    )

    def convert(row: dict[str, Any]) -> dict[str, Any]:
        for name in ("total_volume", "total_trades", "rank"):
            row[name] = int(row[name])
        row["tier_volume"] = None if row["tier_volume"] is None else int(row["tier_volume"])
        if row["series"] == COMBINED:
            row["market_share"] = _pct(row["total_volume"], row["tier_volume"])
        row["week"] = _date(row["week"])
        return row

    return RangeRows(sql, params, _MARKET_COLUMNS, convert, own.db)


def _date(value: Any) -> date:
    """A week as the driver gives it (SQLite: text once it has passed through a CTE)."""
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
