"""Reads of normalized volume and analytics as known at an instant, per capture or versioned."""

from __future__ import annotations

from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db.models import F, FilteredRelation, OuterRef, Q, QuerySet, Subquery, Sum

from otc.models import (
    Capture,
    QualityReport,
    SymbolRolling,
    SymbolWeekSummary,
    Venue,
    VenueMarketShare,
    VenueRolling,
    VenueVolume,
    answering,
)
from otc.selectors.captures import current_captures, key_filter
from otc.weeks import week_start
from spine.time import parse_date

__all__ = [
    "latest_week",
    "quality_report",
    "quality_reports",
    "symbol_rolling",
    "symbol_summaries",
    "symbol_venues",
    "venue_rolling",
    "venue_shares",
    "venue_shares_across_tiers",
    "venue_shares_with_rolling",
    "venue_volumes",
    "venues",
    "version_at",
    "week_symbol_summaries",
    "weeks_held",
]


def version_at(as_of: datetime | None) -> Q:
    """Q for versioned analytic rows current at ``as_of``."""
    if as_of is None:
        return Q(replaced_at__isnull=True)
    return Q(computed_at__lte=as_of) & (Q(replaced_at__isnull=True) | Q(replaced_at__gt=as_of))


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
    key = key_filter(tier=tier, week=week, ats=ats, week_from=week_from, week_to=week_to)
    return model.objects.filter(key & answering(as_of, prefix="capture__"))


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
    capture_ids = (
        current_captures(tier=tier, week=week, ats=ats, as_of=as_of).order_by().values("pk")
    )
    if tier is not None and ats is not None:
        return SymbolWeekSummary.objects.filter(capture_id=Subquery(capture_ids[:1]))
    return SymbolWeekSummary.objects.filter(capture_id__in=Subquery(capture_ids))


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


def _versioned(
    model: Any,
    *,
    as_of: datetime | None,
    tier: str | None,
    week: date | str | None,
    ats: bool | None,
) -> QuerySet[Any]:
    key = key_filter(tier=tier, week=week, ats=ats)
    return model.objects.filter(key & answering(as_of, prefix="capture__") & version_at(as_of))


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


def venues(*, mpid: str | None = None, seen_since: date | str | None = None) -> QuerySet[Venue]:
    """Venues by MPID with their latest name and first/last week seen."""
    qs = Venue.objects.all()
    if mpid is not None:
        qs = qs.filter(mpid=mpid.strip().upper())
    if seen_since is not None:
        qs = qs.filter(last_seen_week__gte=week_start(parse_date(seen_since)))
    return qs
