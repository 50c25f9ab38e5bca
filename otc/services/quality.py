"""Weekly data quality: metrics for a capture, a grade A–F, warnings and the gate."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Sum

from otc.models import Capture, Grade, QualityReport, VenueMarketShare

__all__ = ["Verdict", "evaluate", "grade_metrics", "prior_capture", "save_report"]

_ORDER = "ABCDF"
_PLACES = Decimal("0.0001")


@dataclass
class Verdict:
    grade: str
    metrics: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.grade != Grade.F


def _pct(part: int | Decimal, whole: int | Decimal) -> Decimal | None:
    if not whole:
        return None
    return (Decimal(part) * 100 / Decimal(whole)).quantize(_PLACES)


def _num(value: Decimal | None) -> float | None:
    """JSON number for a 4-place decimal metric (reports are read by people)."""
    return None if value is None else float(value)


def prior_capture(capture: Capture) -> Capture | None:
    """The current, computed capture of the previous week (same tier and ATS flag)."""
    return (
        Capture.objects.current()
        .of_key(capture.tier, capture.week - timedelta(weeks=1), capture.ats)
        .filter(pk__in=VenueMarketShare.objects.values("capture_id"))
        .first()
    )


def _shares(capture_id: int) -> dict[str, tuple[int, Decimal | None]]:
    rows = VenueMarketShare.objects.filter(capture_id=capture_id)
    rows = rows.only("mpid", "total_volume", "market_share")
    return {row.mpid: (row.total_volume, row.market_share) for row in rows}


def collect_metrics(capture: Capture, prior: Capture | None) -> dict[str, Any]:
    """Measure the capture (whose venue shares must be computed) against ``prior``."""
    counts = VenueMarketShare.objects.filter(capture_id=capture.pk).aggregate(
        rows=Sum("symbol_count"), zero=Sum("zero_volume_rows")
    )
    counts = {key: value or 0 for key, value in counts.items()}
    shares = _shares(capture.pk)
    total = sum(volume for volume, _ in shares.values())
    metrics: dict[str, Any] = {
        "rows": capture.row_count,
        "rejects": capture.reject_count,
        "reject_rate_pct": _num(_pct(capture.reject_count, capture.row_count)) or 0.0,
        "accepted_rows": counts["rows"],
        "zero_volume_rows": counts["zero"],
        "zero_volume_pct": _num(_pct(counts["zero"], counts["rows"])) or 0.0,
        "venues": len(shares),
        "total_volume": total,
        "prior_capture_id": prior.pk if prior else None,
        "prior_week": prior.week.isoformat() if prior else None,
    }
    if prior is None:
        return metrics
    before = _shares(prior.pk)
    prior_total = sum(volume for volume, _ in before.values())
    kept = sorted(set(before) & set(shares))
    shifts = []
    for mpid in sorted(set(before) | set(shares)):
        now_share = (shares.get(mpid) or (0, Decimal(0)))[1] or Decimal(0)
        then_share = (before.get(mpid) or (0, Decimal(0)))[1] or Decimal(0)
        shifts.append((abs(now_share - then_share), mpid, then_share, now_share))
    shifts.sort(key=lambda item: (-item[0], item[1]))
    metrics.update(
        {
            "prior_venues": len(before),
            "prior_total_volume": prior_total,
            "venue_coverage_pct": _num(_pct(len(kept), len(before))),
            "venues_missing": sorted(set(before) - set(shares)),
            "venues_new": sorted(set(shares) - set(before)),
            "volume_change_pct": _num(_pct(total - prior_total, prior_total)),
            "max_share_shift_pp": _num(shifts[0][0]) if shifts else 0.0,
            "share_shifts": [
                {"mpid": mpid, "prior_pct": _num(then), "pct": _num(now), "shift_pp": _num(d)}
                for d, mpid, then, now in shifts
                if d > 10
            ],
        }
    )
    return metrics


def _band(value: float, limits: list[tuple[float, str]], above: str) -> str:
    """The grade of the first limit ``value`` does not exceed, else ``above``."""
    for limit, grade in limits:
        if value <= limit:
            return grade
    return above


def grade_metrics(metrics: dict[str, Any]) -> Verdict:
    """Apply the thresholds in the module docstring; the worst check sets the grade."""
    checks: list[tuple[str, str]] = []
    if not metrics.get("accepted_rows"):
        checks.append(("F", "no accepted rows: every row was rejected"))
    reject = metrics["reject_rate_pct"]
    checks.append(
        (
            _band(reject, [(0, "A"), (1, "B"), (5, "C"), (10, "D")], "F"),
            f"reject rate {reject}% ({metrics['rejects']} of {metrics['rows']} rows)",
        )
    )
    zero = metrics["zero_volume_pct"]
    checks.append(
        (
            _band(zero, [(0, "A"), (1, "B"), (5, "C")], "D"),
            f"{metrics['zero_volume_rows']} zero-volume rows ({zero}%)",
        )
    )
    coverage = metrics.get("venue_coverage_pct")
    if coverage is not None:
        grade = _band(-coverage, [(-100, "A"), (-90, "B"), (-75, "C"), (-50, "D")], "F")
        missing = ", ".join(metrics["venues_missing"]) or "none"
        checks.append(
            (grade, f"venue coverage {coverage}% of the prior week's venues (missing: {missing})")
        )
    change = metrics.get("volume_change_pct")
    if change is not None:
        checks.append(
            (
                _band(abs(change), [(50, "A"), (200, "C")], "D"),
                f"volume swing {change:+}% against the prior week",
            )
        )
    shift = metrics.get("max_share_shift_pp")
    if metrics.get("prior_capture_id") is not None and shift is not None:
        moved = ", ".join(
            f"{s['mpid']} {s['prior_pct']}% → {s['pct']}%" for s in metrics["share_shifts"]
        )
        checks.append(
            (
                _band(shift, [(10, "A"), (25, "C")], "D"),
                f"market-share shift up to {shift}pp" + (f" ({moved})" if moved else ""),
            )
        )
    grade = max((g for g, _ in checks), key=_ORDER.index, default="A")
    return Verdict(
        grade=grade,
        metrics=metrics,
        warnings=[message for g, message in checks if g in "BCD"],
        failures=[message for g, message in checks if g == "F"],
    )


def evaluate(capture: Capture) -> tuple[Verdict, Capture | None]:
    """Measure and grade a capture whose venue shares are computed."""
    prior = prior_capture(capture)
    return grade_metrics(collect_metrics(capture, prior)), prior


def save_report(
    capture: Capture, verdict: Verdict, prior: Capture | None, *, now: datetime
) -> QualityReport:
    """Store the verdict as the capture's current report, replacing (not deleting) the
    previous one, and record the grade on the capture."""
    QualityReport.objects.filter(capture_id=capture.pk, replaced_at__isnull=True).update(
        replaced_at=now
    )
    report = QualityReport.objects.create(
        capture=capture,
        week=capture.week,
        tier=capture.tier,
        ats=capture.ats,
        grade=verdict.grade,
        metrics=verdict.metrics,
        warnings=verdict.warnings,
        failures=verdict.failures,
        prior_capture=prior,
        computed_at=now,
    )
    Capture.objects.filter(pk=capture.pk).update(quality_grade=verdict.grade)
    return report
