"""The operations overview page: recent executions, open dead letters, data freshness."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.contrib import admin
from django.db.models import Count, Sum
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.safestring import SafeString

from dlq.models import DeadLetter
from dlq.selectors import open_counts
from executions.models import Execution, ExecutionStatus
from executions.workers import workers_panel
from ops.charts import OTHER_COLOUR, Series, line_chart
from otc import selectors as otc_selectors
from otc.models import Capture, Tier
from spine.time import ago

WINDOW_HOURS = 24
CHART_WEEKS = 8
CHART_VENUES = 6


@dataclass(frozen=True)
class TierFreshness:
    """The newest current capture of a tier, with its quality grade."""

    tier: str
    label: str
    capture: Capture | None


@dataclass
class MarketShareChart:
    tier: str
    weeks: list[date]
    series: list[Series] = field(default_factory=list)

    @property
    def svg(self) -> SafeString:
        return line_chart(
            [w.isoformat() for w in self.weeks],
            self.series,
            title=(
                f"Venue market share, {self.tier}, combined (ATS + non-ATS), "
                f"last {len(self.weeks)} week(s)"
            ),
            y_suffix="%",
        )


def executions_by_status(hours: int = WINDOW_HOURS) -> dict[str, int]:
    """Executions created in the last ``hours``, per status (every status listed)."""
    rows = (
        Execution.objects.filter(created_at__gte=ago(hours=hours))
        .order_by()
        .values_list("status")
        .annotate(n=Count("id"))
    )
    counts = dict.fromkeys(ExecutionStatus.values, 0)
    counts.update({status: n for status, n in rows})
    return counts


def latest_weeks() -> list[TierFreshness]:
    """Per tier, its newest current capture (any ATS flag), or None."""
    return [
        TierFreshness(
            tier,
            label,
            otc_selectors.current_captures(tier=tier).order_by("-week", "-ats").first(),
        )
        for tier, label in Tier.choices
    ]


def market_share_chart(
    tier: str, *, weeks: int = CHART_WEEKS, venues: int = CHART_VENUES
) -> MarketShareChart:
    """Share of the tier's weekly volume (ATS and non-ATS combined, and titled so) of its top venues
    over the latest ``weeks`` weeks with data; the rest as "Other"."""
    recent = sorted(otc_selectors.available_weeks(tier=tier)[:weeks])
    chart = MarketShareChart(tier=tier, weeks=recent)
    if not recent:
        return chart
    rows = (
        otc_selectors.venue_shares(tier=tier, week_from=recent[0], week_to=recent[-1])
        .order_by()
        .values_list("week", "mpid")
        .annotate(volume=Sum("total_volume"))
    )
    volume: dict[tuple[date, str], int] = {}
    totals: dict[date, int] = defaultdict(int)
    by_venue: dict[str, int] = defaultdict(int)
    for week, mpid, vol in rows:
        volume[(week, mpid)] = int(vol or 0)
        totals[week] += int(vol or 0)
        by_venue[mpid] += int(vol or 0)
    top = sorted(by_venue, key=lambda m: (-by_venue[m], m))[:venues]

    def share(part: int, week: date) -> float | None:
        whole = totals.get(week, 0)
        if not whole:
            return None
        pct = (Decimal(part) * 100 / whole).quantize(Decimal("0.01"), ROUND_HALF_UP)
        return float(pct)

    for mpid in top:
        chart.series.append(Series(mpid, [share(volume.get((w, mpid), 0), w) for w in recent]))
    if len(by_venue) > len(top):
        other = [
            share(totals.get(w, 0) - sum(volume.get((w, m), 0) for m in top), w) for w in recent
        ]
        chart.series.append(Series("Other", other, colour=OTHER_COLOUR))
    return chart


def overview(chart_tier: str | None = None) -> dict[str, Any]:
    """Everything the overview page shows."""
    by_status = executions_by_status()
    freshness = latest_weeks()
    if chart_tier not in Tier.values:
        newest = [f for f in freshness if f.capture is not None]
        newest.sort(key=lambda f: f.capture.week if f.capture else date.min, reverse=True)
        chart_tier = newest[0].tier if newest else Tier.T1
    letters = open_counts()
    return {
        "window_hours": WINDOW_HOURS,
        "by_status": by_status,
        "executions_total": sum(by_status.values()),
        "since": ago(hours=WINDOW_HOURS),
        "open_dead_letters": DeadLetter.objects.open().count(),
        "open_by_pipeline": sorted(
            ((pipeline, kind, n) for (pipeline, kind), n in letters.items()),
            key=lambda row: (-row[2], row[0]),
        ),
        "freshness": freshness,
        "pending_captures": otc_selectors.pending_capture_counts(),
        "chart_tier": chart_tier,
        "tiers": Tier.choices,
        "chart": market_share_chart(chart_tier),
    }


def overview_view(request: HttpRequest) -> HttpResponse:
    """The admin's operations overview (wrapped in ``admin_view``: staff only)."""
    context = {
        **admin.site.each_context(request),
        "title": "Operations overview",
        **overview(request.GET.get("tier")),
        **workers_panel(request),
    }
    return TemplateResponse(request, "admin/operations/overview.html", context)


__all__ = [
    "executions_by_status",
    "latest_weeks",
    "market_share_chart",
    "overview",
    "overview_view",
]
