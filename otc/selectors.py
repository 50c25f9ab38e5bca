"""Reads of OTC data for the API, the admin and commands; point in time throughout.

Every selector takes ``as_of``: ``None`` means "now" (the current captures and
analytics), an aware datetime means "what Market Spine knew then":

* a capture answered at T if it became current by T (``promoted_at``: its compute
  passed the quality gate) and was not superseded by T, so for each (tier, week,
  ATS flag) at most one capture answers; staged, failed and rejected captures never
  answer (see ``Capture.objects.known_at``);
* per-capture analytics (symbol summaries, venue shares, normalized volume) are a
  pure function of their capture, so they answer through it;
* versioned analytics (rolling windows, quality reports) also need the row version
  that was current at T: computed by T and not replaced by T.

Filters left as ``None`` do not filter. ``tier`` accepts T1, T2, OTC and the API's
OTCE. Querysets are returned unevaluated so callers can order, page and filter more.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db import connection
from django.db.models import Count, F, FilteredRelation, OuterRef, Q, QuerySet, Subquery, Sum

from otc.models import (
    PENDING_STATES,
    Capture,
    QualityReport,
    RawRow,
    Reject,
    SymbolRolling,
    SymbolWeekSummary,
    Venue,
    VenueMarketShare,
    VenueRolling,
    VenueVolume,
    answering,
    current_sql,
)
from otc.parser import parse_tier
from spine.time import parse_date, week_start

__all__ = [
    "available_weeks",
    "capture_versions",
    "captures",
    "current_capture",
    "current_captures",
    "known_at",
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
    "week_symbol_page",
    "week_symbol_summaries",
    "week_venue_page",
    "weeks_held",
    "with_latest_report",
]


def known_at(as_of: datetime | None = None, *, prefix: str = "") -> Q:
    """Q for captures current at ``as_of`` (now when ``None``); ``prefix`` is the path
    to the capture, e.g. ``"capture__"``. The one definition is ``otc.models.answering``."""
    return answering(as_of, prefix=prefix)


def _version_at(as_of: datetime | None) -> Q:
    """Q for versioned analytic rows current at ``as_of``."""
    if as_of is None:
        return Q(replaced_at__isnull=True)
    return Q(computed_at__lte=as_of) & (Q(replaced_at__isnull=True) | Q(replaced_at__gt=as_of))


def _key_filter(
    *,
    tier: str | None = None,
    week: date | str | None = None,
    ats: bool | None = None,
    week_from: date | str | None = None,
    week_to: date | str | None = None,
) -> Q:
    """Q on the week/tier/ats columns every OTC table carries."""
    q = Q()
    if tier is not None:
        q &= Q(tier=parse_tier(tier))
    if week is not None:
        q &= Q(week=week_start(parse_date(week)))
    if ats is not None:
        q &= Q(ats=ats)
    if week_from is not None:
        q &= Q(week__gte=week_start(parse_date(week_from)))
    if week_to is not None:
        q &= Q(week__lte=week_start(parse_date(week_to)))
    return q


# Captures ---------------------------------------------------------------------------


def captures(
    *,
    tier: str | None = None,
    week: date | str | None = None,
    ats: bool | None = None,
    include_superseded: bool = True,
    as_of: datetime | None = None,
) -> QuerySet[Capture]:
    """Captures, newest week first. With ``include_superseded=False`` only those current
    at ``as_of``; otherwise every capture ingested by ``as_of`` (all when ``None``),
    whatever its state."""
    qs = Capture.objects.complete().filter(_key_filter(tier=tier, week=week, ats=ats))
    if not include_superseded:
        return qs.filter(known_at(as_of))
    if as_of is not None:
        qs = qs.filter(ingested_at__lte=as_of)
    return qs


def current_captures(
    *,
    tier: str | None = None,
    ats: bool | None = None,
    week: date | str | None = None,
    week_from: date | str | None = None,
    week_to: date | str | None = None,
    as_of: datetime | None = None,
) -> QuerySet[Capture]:
    """The capture answering for each (tier, week, ATS flag) at ``as_of``."""
    key = _key_filter(tier=tier, ats=ats, week=week, week_from=week_from, week_to=week_to)
    return Capture.objects.filter(key & known_at(as_of))


def current_capture(
    *, tier: str, week: date | str, ats: bool = False, as_of: datetime | None = None
) -> Capture | None:
    """The one capture answering for (tier, week, ats) at ``as_of``, if any."""
    return current_captures(tier=tier, week=week, ats=ats, as_of=as_of).first()


def pending_capture_counts() -> dict[str, int]:
    """How many captures are staged, failed and rejected (every one of the three
    listed): what did not become current, for operators to look at."""
    rows = Capture.objects.pending().order_by().values_list("state").annotate(n=Count("id"))
    return dict.fromkeys(PENDING_STATES, 0) | dict(rows)


def capture_versions(*, tier: str, week: date | str, ats: bool = False) -> QuerySet[Capture]:
    """Every capture ever taken for (tier, week, ats), newest first: the lineage."""
    return captures(tier=tier, week=week, ats=ats).order_by("-ingested_at", "-id")


def available_weeks(
    *, tier: str | None = None, ats: bool | None = None, as_of: datetime | None = None
) -> list[date]:
    """Weeks that have a current capture at ``as_of``, newest first."""
    qs = current_captures(tier=tier, ats=ats, as_of=as_of)
    return list(qs.order_by("-week").values_list("week", flat=True).distinct())


def latest_week(
    *,
    tier: str | None = None,
    ats: bool | None = None,
    symbol: str | None = None,
    as_of: datetime | None = None,
) -> date | None:
    """The newest week with a current capture at ``as_of`` (with data for ``symbol`` if
    given): what "no week named" means to the API."""
    if symbol is not None:
        qs: QuerySet[Any] = symbol_summaries(tier=tier, ats=ats, symbol=symbol, as_of=as_of)
    else:
        qs = current_captures(tier=tier, ats=ats, as_of=as_of)
    return qs.order_by("-week").values_list("week", flat=True).first()


def weeks_held(
    *, tier: str | None = None, ats: bool | None = None, as_of: datetime | None = None
) -> QuerySet[Capture]:
    """The capture of each week held at ``as_of``, annotated with ``grade``: its quality
    report's grade as known then (``Capture.quality_grade`` only holds the latest)."""
    grade = (
        quality_reports(as_of=as_of)
        .filter(capture_id=OuterRef("pk"))
        .order_by("-computed_at")
        .values("grade")[:1]
    )
    return current_captures(tier=tier, ats=ats, as_of=as_of).annotate(grade=Subquery(grade))


def raw_rows(capture_id: int) -> QuerySet[RawRow]:
    """A capture's data lines as received, in file order."""
    return RawRow.objects.of_capture(capture_id).order_by("pk")


def rejects(capture_id: int) -> QuerySet[Reject]:
    """A capture's rejected lines with reasons, in file order."""
    return Reject.objects.filter(capture_id=capture_id).order_by("line_no")


# Normalized data and per-capture analytics ---------------------------------------------


def _per_capture(
    model: Any,
    *,
    as_of: datetime | None,
    tier: str | None,
    week: date | str | None,
    ats: bool | None,
    week_from: date | str | None = None,
    week_to: date | str | None = None,
) -> QuerySet[Any]:
    key = _key_filter(tier=tier, week=week, ats=ats, week_from=week_from, week_to=week_to)
    return model.objects.filter(key & known_at(as_of, prefix="capture__"))


def venue_volumes(
    *,
    tier: str | None = None,
    week: date | str | None = None,
    ats: bool | None = None,
    symbol: str | None = None,
    mpid: str | None = None,
    as_of: datetime | None = None,
) -> QuerySet[VenueVolume]:
    """Normalized symbol × venue rows of the captures current at ``as_of``."""
    qs = _per_capture(VenueVolume, as_of=as_of, tier=tier, week=week, ats=ats)
    if symbol is not None:
        qs = qs.filter(symbol=symbol.strip().upper())
    if mpid is not None:
        qs = qs.filter(mpid=mpid.strip().upper())
    return qs


def symbol_summaries(
    *,
    tier: str | None = None,
    week: date | str | None = None,
    ats: bool | None = None,
    symbol: str | None = None,
    week_from: date | str | None = None,
    week_to: date | str | None = None,
    as_of: datetime | None = None,
) -> QuerySet[SymbolWeekSummary]:
    """Symbol weekly summaries (totals, top venue, HHI and level)."""
    qs = _per_capture(
        SymbolWeekSummary,
        as_of=as_of,
        tier=tier,
        week=week,
        ats=ats,
        week_from=week_from,
        week_to=week_to,
    )
    if symbol is not None:
        qs = qs.filter(symbol=symbol.strip().upper())
    return qs


def week_symbol_summaries(
    *,
    week: date | str,
    tier: str | None = None,
    ats: bool | None = None,
    as_of: datetime | None = None,
) -> QuerySet[SymbolWeekSummary]:
    """One week's symbol summaries: the rows :func:`symbol_summaries` gives for ``week``,
    selected by the answering capture's id rather than through a join.

    A week holds thousands of symbols; through the join the planner cannot tell that
    one capture answers, so it scans and sorts them all. With tier and ATS flag given
    the capture is one id (an ``InitPlan``), so the ``(capture_id, ...)`` indexes give
    counts from the index alone and pages in index order.
    """
    answering = current_captures(tier=tier, week=week, ats=ats, as_of=as_of).order_by().values("pk")
    if tier is not None and ats is not None:
        return SymbolWeekSummary.objects.filter(capture_id=Subquery(answering[:1]))
    return SymbolWeekSummary.objects.filter(capture_id__in=Subquery(answering))


# One week's list pages, precompiled ------------------------------------------------------
#
# The symbol-week and venue lists are the API's busiest reads, and building and
# compiling their querysets costs several times what the database spends answering
# them. For the common request (one tier, now) these give the same rows as
# :func:`week_symbol_summaries` and :func:`venue_shares_with_rolling` for the week,
# from fixed SQL: one statement per page, the total counted inside it.

#: The answering capture of (tier, week, ats), now: at most one (see :func:`known_at`).
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
    _fields(
        SymbolWeekSummary,
        "s",
        [
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
            "capture_id",
        ],
    ),
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


def venue_shares(
    *,
    tier: str | None = None,
    week: date | str | None = None,
    ats: bool | None = None,
    mpid: str | None = None,
    week_from: date | str | None = None,
    week_to: date | str | None = None,
    as_of: datetime | None = None,
) -> QuerySet[VenueMarketShare]:
    """Venue market share per capture (volume, trades, symbols, share %, rank)."""
    qs = _per_capture(
        VenueMarketShare,
        as_of=as_of,
        tier=tier,
        week=week,
        ats=ats,
        week_from=week_from,
        week_to=week_to,
    )
    if mpid is not None:
        qs = qs.filter(mpid=mpid.strip().upper())
    return qs


def venue_shares_with_rolling(
    *,
    tier: str | None = None,
    week: date | str | None = None,
    ats: bool | None = None,
    mpid: str | None = None,
    week_from: date | str | None = None,
    week_to: date | str | None = None,
    as_of: datetime | None = None,
) -> QuerySet[VenueMarketShare]:
    """:func:`venue_shares` annotated with the venue's rolling window anchored at the same
    capture, as known at ``as_of``: ``trend``, ``rolling_avg_volume`` and
    ``weeks_in_window`` (NULL when no window was computed, e.g. under a failed gate).

    One LEFT JOIN (at most one window version is current at any instant), not a
    subquery per column and row."""
    window = "capture__venue_rolling__"
    current = Q(**{f"{window}mpid": F("mpid")})
    if as_of is None:
        current &= Q(**{f"{window}replaced_at__isnull": True})
    else:
        current &= Q(**{f"{window}computed_at__lte": as_of}) & (
            Q(**{f"{window}replaced_at__isnull": True}) | Q(**{f"{window}replaced_at__gt": as_of})
        )
    return (
        venue_shares(
            tier=tier,
            week=week,
            ats=ats,
            mpid=mpid,
            week_from=week_from,
            week_to=week_to,
            as_of=as_of,
        )
        .annotate(venue_window=FilteredRelation("capture__venue_rolling", condition=current))
        .annotate(
            trend=F("venue_window__trend"),
            rolling_avg_volume=F("venue_window__avg_volume"),
            weeks_in_window=F("venue_window__weeks_in_window"),
        )
    )


def symbol_venues(
    *,
    symbol: str,
    week: date | str,
    tier: str | None = None,
    ats: bool | None = None,
    as_of: datetime | None = None,
) -> list[dict[str, Any]]:
    """One symbol's venue rows for a week with each venue's ``share`` of the symbol's
    volume in its capture (percent, 4 places, half up, as the stored analytics), most
    volume first. A symbol has a few dozen venues at most, so shares are computed here;
    they sum to 100 up to that rounding."""
    rows = list(
        venue_volumes(symbol=symbol, week=week, tier=tier, ats=ats, as_of=as_of)
        .values(
            "capture_id",
            "tier",
            "ats",
            "week",
            "symbol",
            "issue_name",
            "mpid",
            "venue_name",
            "share_volume",
            "trade_count",
            "avg_trade_size",
        )
        .order_by("tier", "ats", "-share_volume", "mpid")
    )
    totals: dict[int, int] = {}
    for row in rows:
        totals[row["capture_id"]] = totals.get(row["capture_id"], 0) + row["share_volume"]
    for row in rows:
        total = totals[row["capture_id"]]
        row["share"] = (
            (Decimal(row["share_volume"]) * 100 / total).quantize(Decimal("0.0001"), ROUND_HALF_UP)
            if total
            else None
        )
    return rows


def venue_shares_across_tiers(
    *, week: date | str, ats: bool | None = None, as_of: datetime | None = None
) -> list[dict[str, Any]]:
    """Venue volume for one week summed over tiers (and ATS flags unless given), with
    each venue's share of the total in percent (4 places, half up) and rank."""
    rows = list(
        venue_shares(week=week, ats=ats, as_of=as_of)
        .values("mpid")
        .annotate(volume=Sum("total_volume"), trades=Sum("total_trades"))
        .order_by("-volume", "mpid")
    )
    grand = sum(row["volume"] for row in rows)
    rank, previous = 0, None
    for position, row in enumerate(rows, 1):
        if row["volume"] != previous:
            rank, previous = position, row["volume"]
        row["rank"] = rank
        row["market_share"] = (
            (Decimal(row["volume"]) * 100 / grand).quantize(Decimal("0.0001"), ROUND_HALF_UP)
            if grand
            else None
        )
    return rows


# Versioned analytics -------------------------------------------------------------------


def _versioned(
    model: Any,
    *,
    as_of: datetime | None,
    tier: str | None,
    week: date | str | None,
    ats: bool | None,
) -> QuerySet[Any]:
    key = _key_filter(tier=tier, week=week, ats=ats)
    return model.objects.filter(key & known_at(as_of, prefix="capture__") & _version_at(as_of))


def symbol_rolling(
    *,
    tier: str | None = None,
    week: date | str | None = None,
    ats: bool | None = None,
    symbol: str | None = None,
    as_of: datetime | None = None,
) -> QuerySet[SymbolRolling]:
    """Six-week rolling averages and trend per symbol, for windows ending at ``week``."""
    qs = _versioned(SymbolRolling, as_of=as_of, tier=tier, week=week, ats=ats)
    if symbol is not None:
        qs = qs.filter(symbol=symbol.strip().upper())
    return qs


def venue_rolling(
    *,
    tier: str | None = None,
    week: date | str | None = None,
    ats: bool | None = None,
    mpid: str | None = None,
    as_of: datetime | None = None,
) -> QuerySet[VenueRolling]:
    """Six-week rolling averages and trend per venue, for windows ending at ``week``."""
    qs = _versioned(VenueRolling, as_of=as_of, tier=tier, week=week, ats=ats)
    if mpid is not None:
        qs = qs.filter(mpid=mpid.strip().upper())
    return qs


def quality_reports(
    *,
    tier: str | None = None,
    week: date | str | None = None,
    ats: bool | None = None,
    grade: str | None = None,
    as_of: datetime | None = None,
) -> QuerySet[QualityReport]:
    """The quality report of each current capture (F reports included)."""
    qs = _versioned(QualityReport, as_of=as_of, tier=tier, week=week, ats=ats)
    if grade is not None:
        qs = qs.filter(grade=grade.strip().upper())
    return qs


def quality_report(
    *, tier: str, week: date | str, ats: bool = False, as_of: datetime | None = None
) -> QualityReport | None:
    """The report answering for (tier, week, ats) at ``as_of``, if any."""
    return quality_reports(tier=tier, week=week, ats=ats, as_of=as_of).first()


_REPORT_FIELDS = (
    "id",
    "grade",
    "metrics",
    "warnings",
    "failures",
    "prior_capture_id",
    "computed_at",
)


def with_latest_report(queryset: QuerySet[Capture]) -> QuerySet[Capture]:
    """Captures joined (no extra query) to their latest quality report, whatever their
    state: read it with :func:`latest_quality_report`."""
    latest = FilteredRelation(
        "quality_reports", condition=Q(quality_reports__replaced_at__isnull=True)
    )
    return queryset.annotate(latest_report=latest).annotate(
        **{f"latest_report_{name}": F(f"latest_report__{name}") for name in _REPORT_FIELDS}
    )


def latest_quality_report(capture: Capture) -> QualityReport | None:
    """A capture's latest quality report (a rejected capture's F report too), or
    ``None`` if it was never graded; joined by :func:`with_latest_report` if it was."""
    if not hasattr(capture, "latest_report_id"):
        return QualityReport.objects.filter(capture=capture, replaced_at__isnull=True).first()
    if capture.latest_report_id is None:
        return None
    values = {name: getattr(capture, f"latest_report_{name}") for name in _REPORT_FIELDS}
    return QualityReport(
        capture=capture, week=capture.week, tier=capture.tier, ats=capture.ats, **values
    )


# Reference data ------------------------------------------------------------------------


def venues(*, mpid: str | None = None, seen_since: date | str | None = None) -> QuerySet[Venue]:
    """Venues by MPID with their latest name and first/last week seen."""
    qs = Venue.objects.all()
    if mpid is not None:
        qs = qs.filter(mpid=mpid.strip().upper())
    if seen_since is not None:
        qs = qs.filter(last_seen_week__gte=week_start(parse_date(seen_since)))
    return qs
