"""One captured week in numbers for a terminal (the demo's summary), from the selectors."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from django.db.models import Sum

from otc.selectors.analytics import quality_report, symbol_summaries, venue_shares
from otc.selectors.captures import current_capture

#: "HHI leaders" are the most concentrated symbols among this many most-traded ones,
#: so a thinly traded single-venue symbol (HHI 10,000) does not crowd the list.
LIQUID_SYMBOLS = 200


@dataclass
class WeekReport:
    tier: str
    week: date
    ats: bool
    capture_id: int
    rows: int
    rejects: int
    symbols: int
    venues: int
    total_volume: int
    grade: str
    warnings: list[str] = field(default_factory=list)
    top_venues: list[dict[str, Any]] = field(default_factory=list)
    hhi_leaders: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["week"] = self.week.isoformat()
        return data


def _venue_name(mpid: str, name: str) -> str:
    """FINRA prefixes participant names with the MPID ("CDRG CITADEL ..."): drop it."""
    return name[len(mpid) + 1 :] if name.startswith(f"{mpid} ") else name


def _pct(value: Decimal | None) -> float | None:
    return float(value) if value is not None else None


def week_report(
    *, tier: str, week: date | str, ats: bool = False, top: int = 10
) -> WeekReport | None:
    """The current capture of (tier, week, ats) in numbers; None if there is none."""
    capture = current_capture(tier=tier, week=week, ats=ats)
    if capture is None:
        return None
    summaries = symbol_summaries(tier=tier, week=capture.week, ats=ats)
    shares = venue_shares(tier=tier, week=capture.week, ats=ats)
    graded = quality_report(tier=tier, week=capture.week, ats=ats)
    liquid = summaries.order_by("-total_volume", "symbol")[:LIQUID_SYMBOLS]
    leaders = sorted((s for s in liquid if s.hhi is not None), key=lambda s: (-s.hhi, s.symbol))[
        :top
    ]
    return WeekReport(
        tier=capture.tier,
        week=capture.week,
        ats=capture.ats,
        capture_id=capture.pk,
        rows=capture.row_count,
        rejects=capture.reject_count,
        symbols=summaries.count(),
        venues=shares.count(),
        total_volume=int(shares.aggregate(v=Sum("total_volume"))["v"] or 0),
        grade=graded.grade if graded else capture.quality_grade,
        warnings=[str(w) for w in (graded.warnings if graded else [])],
        top_venues=[
            {
                "rank": s.rank,
                "mpid": s.mpid,
                "name": _venue_name(s.mpid, s.venue_name),
                "share": _pct(s.market_share),
                "volume": s.total_volume,
            }
            for s in shares.order_by("rank", "mpid")[:top]
        ],
        hhi_leaders=[
            {
                "symbol": s.symbol,
                "hhi": _pct(s.hhi),
                "level": s.concentration,
                "venues": s.venue_count,
                "top_venue": s.top_venue_mpid,
                "top_share": _pct(s.top_venue_share),
                "volume": s.total_volume,
            }
            for s in leaders
        ],
    )


def render(report: WeekReport) -> list[str]:
    """The report as lines of text for a terminal."""
    kind = "ATS" if report.ats else "non-ATS"
    lines = [
        f"{report.tier} {kind} week {report.week} (capture {report.capture_id})",
        f"  rows {report.rows:,}  rejects {report.rejects:,}  symbols {report.symbols:,}  "
        f"venues {report.venues:,}  volume {report.total_volume:,} shares",
        f"  quality grade {report.grade or '—'}"
        + (f" with {len(report.warnings)} warning(s)" if report.warnings else ""),
    ]
    lines += [f"    - {w}" for w in report.warnings[:5]]
    lines.append("  top venues by market share:")
    for v in report.top_venues:
        share = f"{v['share']:.2f}%" if v["share"] is not None else "—"
        lines.append(
            f"    {v['rank']:>3}. {v['mpid']:<5} {share:>7}  {v['volume']:>15,}  {v['name']}"
        )
    lines.append(f"  HHI leaders (most concentrated of the {LIQUID_SYMBOLS} most traded symbols):")
    for s in report.hhi_leaders:
        top_share = f"{s['top_share']:.1f}%" if s["top_share"] is not None else "—"
        lines.append(
            f"    {s['symbol']:<6} HHI {s['hhi']:>9,.1f}  {s['level']:<12} "
            f"{s['venues']:>3} venues, {s['top_venue']} has {top_share}"
        )
    return lines
