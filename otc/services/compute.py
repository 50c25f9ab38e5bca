"""Compute: every analytic of a normalized capture, behind the quality gate."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction

from executions.fencing import fence
from otc.models import Capture, CaptureState
from otc.services.analytics import (
    compute_symbol_summaries,
    compute_venue_shares,
    upsert_venues,
)
from otc.services.errors import CaptureSuperseded, NotNormalized, QualityGateFailed
from otc.services.lifecycle import mark_pending, promote, record_failure
from otc.services.quality import Verdict, evaluate, save_report
from otc.services.rolling import WINDOW_WEEKS, compute_rolling
from otc.services.sql import tune_bulk_transaction
from spine.time import utc_now

__all__ = ["ComputeResult", "compute_capture"]


@dataclass(frozen=True)
class ComputeResult:
    capture_id: int
    grade: str
    warnings: list[str]
    counts: dict[str, int]
    refreshed_weeks: list[str] = field(default_factory=list)
    promoted: bool = False
    superseded_capture_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "capture_id": self.capture_id,
            "grade": self.grade,
            "warnings": self.warnings,
            "counts": self.counts,
            "refreshed_weeks": self.refreshed_weeks,
            "promoted": self.promoted,
            "superseded_capture_id": self.superseded_capture_id,
        }


class _Blocked(Exception):
    def __init__(self, verdict: Verdict, prior: Capture | None) -> None:
        self.verdict = verdict
        self.prior = prior


def compute_capture(capture_id: int) -> ComputeResult:
    """Compute (or recompute) all analytics of a capture; see the module docstring."""
    capture = Capture.objects.get(pk=capture_id)
    if capture.state == CaptureState.SUPERSEDED:
        raise CaptureSuperseded(
            f"capture {capture_id} was superseded by capture {capture.superseded_by_id}: "
            "its analytics are kept as they were"
        )
    if capture.normalized_at is None:
        raise NotNormalized(f"capture {capture_id} is not normalized yet: run otc.normalize")
    try:
        return _compute(capture_id)
    except QualityGateFailed:
        raise
    except Exception as exc:
        record_failure(capture_id, "compute", exc)
        raise


def _compute(capture_id: int) -> ComputeResult:
    now = utc_now()
    try:
        with transaction.atomic():
            capture = Capture.objects.select_for_update().get(pk=capture_id)
            tune_bulk_transaction()
            counts = {"venue_shares": compute_venue_shares(capture)}
            counts["symbol_summaries"] = compute_symbol_summaries(capture)
            verdict, prior = evaluate(capture)
            if not verdict.passed:
                raise _Blocked(verdict, prior)
            save_report(capture, verdict, prior, now=now)
            staged = not capture.is_current
            superseded = promote(capture, now=now) if staged else None
            upsert_venues(capture)
            counts.update(compute_rolling(capture, now=now))
            refreshed = _refresh_following_weeks(capture, now)
            Capture.objects.filter(pk=capture_id).update(computed_at=now)
            fence()
    except _Blocked as blocked:
        with transaction.atomic():
            save_report(capture, blocked.verdict, blocked.prior, now=now)
            reasons = "; ".join(blocked.verdict.failures)
            mark_pending(capture_id, CaptureState.REJECTED, f"quality gate (grade F): {reasons}")
            fence()
        raise QualityGateFailed(capture_id, blocked.verdict.failures) from None
    return ComputeResult(
        capture_id,
        verdict.grade,
        verdict.warnings,
        counts,
        refreshed,
        promoted=staged,
        superseded_capture_id=superseded.pk if superseded is not None else None,
    )


def _refresh_following_weeks(capture: Capture, now: datetime) -> list[str]:
    """Recompute rolling windows (and the next week's quality report) that include
    this capture's week."""
    following = (
        Capture.objects.current()
        .filter(
            tier=capture.tier,
            ats=capture.ats,
            week__gt=capture.week,
            week__lt=capture.week + timedelta(weeks=WINDOW_WEEKS),
            computed_at__isnull=False,
        )
        .order_by("week")
    )
    refreshed = []
    for later in following:
        compute_rolling(later, now=now)
        if later.week == capture.week + timedelta(weeks=1):
            verdict, prior = evaluate(later)
            save_report(later, verdict, prior, now=now)
        refreshed.append(later.week.isoformat())
    return refreshed
