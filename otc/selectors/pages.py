"""Precompiled SQL for one week's symbol and venue list pages, the API's busiest reads.

Same rows as ``week_symbol_summaries`` / ``venue_shares_with_rolling`` for one tier now;
why fixed SQL is in docs/otc.md ("Precompiled list pages").
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.db import connection

from otc.models import Capture, SymbolWeekSummary, VenueMarketShare, VenueRolling, current_sql
from otc.parser import parse_tier
from otc.weeks import week_start
from spine.time import parse_date

__all__ = [
    "SYMBOL_ROW_FIELDS",
    "week_symbol_count",
    "week_symbol_page",
    "week_venue_count",
    "week_venue_page",
]

#: The columns of a symbol-week row (the API's list adds ``capture``).
SYMBOL_ROW_FIELDS = (
    "symbol",
    "issue_name",
    "week",
    "tier",
    "ats",
    "total_volume",
    "total_trades",
    "venue_count",
    "avg_trade_size",
    "top_venue_mpid",
    "top_venue_name",
    "top_venue_share",
    "hhi",
    "concentration",
)

#: The capture answering for (tier, week, ats) now: at most one (``Capture.objects.current``).
_ANSWERING = (
    f"(SELECT c.id FROM {Capture._meta.db_table} c"
    f" WHERE c.tier = %s AND c.week = %s AND c.ats = %s AND {current_sql('c')} LIMIT 1)"
)


class _PageSQL:
    """A page statement over one capture's rows: ``order`` terms are validated names
    (``-`` for descending) mapped to columns; values are converted as the ORM would."""

    def __init__(
        self,
        model: Any,
        select: dict[str, tuple[str, Any]],
        from_sql: str,
        alias: str,
        sort_aliases: dict[str, str] | None = None,
    ) -> None:
        self.model = model
        self.select = select  # output name → (SQL expression, model field)
        self.sortable = {name: sql for name, (sql, _f) in select.items()} | (sort_aliases or {})
        self.from_sql = from_sql
        self.alias = alias
        self.columns = ", ".join(f"{sql} AS {name}" for name, (sql, _f) in select.items())

    def fetch(
        self, key: tuple[Any, ...], order: list[str], offset: int, limit: int
    ) -> tuple[list[dict[str, Any]], int | None]:
        """The rows of one page and the total (``None`` when the page is empty)."""
        terms = ", ".join(
            f"{self.sortable[term.lstrip('-')]} {'DESC' if term.startswith('-') else 'ASC'}"
            for term in order
        )
        table = self.model._meta.db_table
        sql = (
            f"SELECT {self.columns}, (SELECT COUNT(*) FROM {table} n"
            f" WHERE n.capture_id = {_ANSWERING}) AS page_total"
            f" {self.from_sql} WHERE {self.alias}.capture_id = {_ANSWERING}"
            f" ORDER BY {terms} LIMIT %s OFFSET %s"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [*key, *key, limit, offset])
            raw = cursor.fetchall()
        if not raw:
            return [], None
        plan = self._converters()
        rows = []
        for values in raw:
            row = {}
            for (name, converters), value in zip(plan, values, strict=False):
                for convert, expression in converters:
                    value = convert(value, expression, connection)
                row[name] = value
            rows.append(row)
        return rows, raw[0][-1]

    def count(self, key: tuple[Any, ...]) -> int:
        table = self.model._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT COUNT(*) FROM {table} WHERE capture_id = {_ANSWERING}", key)
            return cursor.fetchone()[0]

    def _converters(self) -> list[tuple[str, list[tuple[Any, Any]]]]:
        plan = []
        for name, (_sql, field) in self.select.items():
            col = field.get_col(field.model._meta.db_table)
            converters = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
            plan.append((name, [(convert, col) for convert in converters]))
        return plan


def _fields(model: Any, alias: str, names: list[str]) -> dict[str, tuple[str, Any]]:
    meta = model._meta
    return {
        name: (f"{alias}.{meta.get_field(name).column}", meta.get_field(name)) for name in names
    }


_SYMBOL_PAGE = _PageSQL(
    SymbolWeekSummary,
    _fields(SymbolWeekSummary, "s", [*SYMBOL_ROW_FIELDS, "capture_id"]),
    "FROM otc_symbolweeksummary s",
    "s",
)
_VENUE_PAGE = _PageSQL(
    VenueMarketShare,
    {
        **_fields(
            VenueMarketShare,
            "v",
            [
                "mpid",
                "venue_name",
                "week",
                "tier",
                "ats",
                "total_volume",
                "total_trades",
                "symbol_count",
                "market_share",
                "rank",
            ],
        ),
        "trend": ("r.trend", VenueRolling._meta.get_field("trend")),
        "rolling_avg_volume": ("r.avg_volume", VenueRolling._meta.get_field("avg_volume")),
        "weeks_in_window": ("r.weeks_in_window", VenueRolling._meta.get_field("weeks_in_window")),
        **_fields(VenueMarketShare, "v", ["capture_id"]),
    },
    "FROM otc_venuemarketshare v LEFT OUTER JOIN otc_venuerolling r"
    " ON r.capture_id = v.capture_id AND r.mpid = v.mpid AND r.replaced_at IS NULL",
    "v",
    # The list's sort names (see otc.api): aliases of stored columns.
    sort_aliases={"volume": "v.total_volume", "share": "v.market_share"},
)


def week_symbol_page(
    *, tier: str, week: date | str, ats: bool, order: list[str], offset: int, limit: int
) -> tuple[list[dict[str, Any]], int | None]:
    """A page of :func:`week_symbol_summaries` (now, one tier) as ``values()`` rows in
    ``order`` (field names, ``-`` for descending) and the week's total (``None`` when
    the page is empty: count with :func:`week_symbol_count`)."""
    return _SYMBOL_PAGE.fetch(_page_key(tier, week, ats), order, offset, limit)


def week_symbol_count(*, tier: str, week: date | str, ats: bool) -> int:
    return _SYMBOL_PAGE.count(_page_key(tier, week, ats))


def week_venue_page(
    *, tier: str, week: date | str, ats: bool, order: list[str], offset: int, limit: int
) -> tuple[list[dict[str, Any]], int | None]:
    """A page of :func:`venue_shares_with_rolling` for one week (now, one tier), rows
    and total as :func:`week_symbol_page`; ``volume`` and ``share`` name the total
    volume and market share, as in the venue list's ``sort``."""
    return _VENUE_PAGE.fetch(_page_key(tier, week, ats), order, offset, limit)


def week_venue_count(*, tier: str, week: date | str, ats: bool) -> int:
    return _VENUE_PAGE.count(_page_key(tier, week, ats))


def _page_key(tier: str, week: date | str, ats: bool) -> tuple[Any, ...]:
    monday = connection.ops.adapt_datefield_value(week_start(parse_date(week)))
    return parse_tier(tier), monday, bool(ats)
