"""The quality grade, its warnings and the gate."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from otc import selectors
from otc.models import Capture, QualityReport, SymbolWeekSummary
from otc.services import QualityGateFailed, compute_capture, ingest_file, normalize_capture
from otc.services.quality import grade_metrics
from tests.otc.etl_support import WEEK, row, run_etl, write_file

pytestmark = pytest.mark.embedded


def metrics(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "rows": 1000,
        "rejects": 0,
        "reject_rate_pct": 0.0,
        "accepted_rows": 1000,
        "zero_volume_rows": 0,
        "zero_volume_pct": 0.0,
        "prior_capture_id": None,
    }
    return {**base, **overrides}


def with_prior(**overrides: Any) -> dict[str, Any]:
    prior: dict[str, Any] = {
        "prior_capture_id": 1,
        "venue_coverage_pct": 100.0,
        "venues_missing": [],
        "volume_change_pct": 0.0,
        "max_share_shift_pp": 0.0,
        "share_shifts": [],
    }
    return metrics(**{**prior, **overrides})


@pytest.mark.parametrize(
    ("values", "grade"),
    [
        (metrics(), "A"),
        (metrics(rejects=5, reject_rate_pct=0.5), "B"),
        (metrics(rejects=50, reject_rate_pct=5.0), "C"),
        (metrics(rejects=80, reject_rate_pct=8.0), "D"),
        (metrics(rejects=101, reject_rate_pct=10.1), "F"),
        (metrics(zero_volume_rows=3, zero_volume_pct=0.3), "B"),
        (metrics(zero_volume_rows=60, zero_volume_pct=6.0), "D"),
        (metrics(accepted_rows=0), "F"),
        (with_prior(), "A"),
        (with_prior(venue_coverage_pct=95.0, venues_missing=["XXXX"]), "B"),
        (with_prior(venue_coverage_pct=80.0, venues_missing=["XXXX"]), "C"),
        (with_prior(venue_coverage_pct=60.0, venues_missing=["XXXX"]), "D"),
        (with_prior(venue_coverage_pct=40.0, venues_missing=["XXXX"]), "F"),
        (with_prior(volume_change_pct=50.0), "A"),
        (with_prior(volume_change_pct=-50.01), "C"),
        (with_prior(volume_change_pct=250.0), "D"),
        (with_prior(max_share_shift_pp=10.0), "A"),
        (with_prior(max_share_shift_pp=12.5), "C"),
        (with_prior(max_share_shift_pp=30.0), "D"),
    ],
)
def test_grade_bands(values: dict[str, Any], grade: str) -> None:
    verdict = grade_metrics(values)
    assert verdict.grade == grade
    assert verdict.passed is (grade != "F")
    assert bool(verdict.warnings) is (grade in "BCD")
    assert bool(verdict.failures) is (grade == "F")


def test_messages_say_what_is_wrong() -> None:
    verdict = grade_metrics(
        with_prior(
            rejects=20,
            reject_rate_pct=2.0,
            volume_change_pct=-60.0,
            max_share_shift_pp=15.0,
            share_shifts=[{"mpid": "OTCN", "prior_pct": 80.0, "pct": 65.0, "shift_pp": 15.0}],
        )
    )
    assert verdict.grade == "C"
    assert verdict.warnings == [
        "reject rate 2.0% (20 of 1000 rows)",
        "volume swing -60.0% against the prior week",
        "market-share shift up to 15.0pp (OTCN 80.0% → 65.0%)",
    ]


# --- against the database ----------------------------------------------------------------


@pytest.mark.django_db
def test_week_over_week_checks_and_warnings_are_stored(tmp_path: Path) -> None:
    first = [row("AAAA", m, v, 1) for m, v in (("OTCN", 800), ("OTCX", 150), ("ARCA", 50))]
    run_etl(write_file(tmp_path, first, "a.psv"), week=WEEK)
    second = [row("AAAA", "OTCN", 300, 1), row("AAAA", "OTCX", 300, 1), row("BBBB", "OTCN", 0, 0)]
    result = run_etl(write_file(tmp_path, second, "b.psv"), week=WEEK + timedelta(weeks=1))

    report = selectors.quality_report(tier="OTC", week=WEEK + timedelta(weeks=1))
    assert report is not None
    m = report.metrics
    assert (m["prior_venues"], m["venues"], m["venue_coverage_pct"]) == (3, 2, 66.6667)
    assert m["venues_missing"] == ["ARCA"] and m["venues_new"] == []
    assert (m["total_volume"], m["prior_total_volume"], m["volume_change_pct"]) == (
        600,
        1000,
        -40.0,
    )
    assert m["max_share_shift_pp"] == 35.0
    assert [s["mpid"] for s in m["share_shifts"]] == ["OTCX", "OTCN"]
    assert (m["zero_volume_rows"], m["zero_volume_pct"]) == (1, 33.3333)
    assert report.grade == "D"
    assert result["compute"]["grade"] == "D"
    assert result["compute"]["warnings"] == report.warnings
    assert "venue coverage 66.6667% of the prior week's venues (missing: ARCA)" in report.warnings
    assert Capture.objects.get(pk=result["capture_id"]).quality_grade == "D"
    assert SymbolWeekSummary.objects.filter(capture_id=result["capture_id"]).exists()


@pytest.mark.django_db
def test_grade_f_blocks_compute_and_keeps_the_report(tmp_path: Path) -> None:
    run_etl(write_file(tmp_path, [row(f"S{i:03d}", "OTCN", 10, 1) for i in range(4)], "a.psv"))
    bad = [row("S000", "OTCN", 10, 1)] + [row(f"S{i:03d}", "OTCN", -1, 1) for i in range(1, 4)]
    ingested = ingest_file(write_file(tmp_path, bad, "b.psv"), tier="OTC", week=WEEK, ats=False)
    normalize_capture(ingested.capture_id)

    with pytest.raises(QualityGateFailed) as caught:
        compute_capture(ingested.capture_id)

    assert caught.value.failures == ["reject rate 75.0% (3 of 4 rows)"]
    assert str(caught.value) == (
        f"quality gate failed for capture {ingested.capture_id} (grade F): "
        "reject rate 75.0% (3 of 4 rows)"
    )
    assert not SymbolWeekSummary.objects.filter(capture_id=ingested.capture_id).exists()
    reports = QualityReport.objects.filter(capture_id=ingested.capture_id)
    assert [(r.grade, r.replaced_at) for r in reports] == [("F", None)]
