"""OTC pipelines through the Dispatcher and runner on the in-process backend."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from executions.dispatcher import dispatch
from executions.models import Execution, ExecutionStatus
from executions.registry import InvalidParams, registry
from otc.models import Capture, QualityReport, SymbolWeekSummary, VenueMarketShare
from otc.params import ATS_REQUIRED
from otc.sample.generator import generate_weeks
from otc.selectors import current_capture
from tests.otc.etl_support import assert_nothing_stored, file_bytes, row, write_file

pytestmark = [pytest.mark.embedded, pytest.mark.django_db(transaction=True)]

S = ExecutionStatus


@pytest.fixture(autouse=True)
def local_backend(settings: Any) -> None:
    settings.EXECUTION_BACKEND = "local"


def events(execution: Execution) -> list[tuple[str, Any]]:
    return [(e.type, e.data.get("step")) for e in execution.events.order_by("timestamp", "id")]


def run(pipeline: str, **params: Any) -> Execution:
    execution = dispatch(pipeline, params, trigger_source="cli")
    execution.refresh_from_db()
    return execution


# --- params ----------------------------------------------------------------------------


def test_params_are_canonical_and_lock_per_tier_and_week() -> None:
    spec = registry.get("otc.ingest_file")
    canonical = spec.validate(
        {"path": "./in/x.psv", "tier": "otce", "week": "2025-12-18", "ats": True}
    )
    assert canonical == {"path": "in/x.psv", "tier": "OTC", "week": "2025-12-15", "ats": True}
    assert spec.lock_key_for(canonical) == "otc:OTC:2025-12-15"
    for name in ("otc.normalize", "otc.compute", "otc.full_etl"):
        assert registry.get(name).lock_key == "otc:{tier}:{week}"


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"tier": "T3", "week": "2025-12-15"}, "tier", "unknown tier 'T3'"),
        ({"tier": "T1", "week": "15/12/2025"}, "week", "Date has wrong format"),
        ({"tier": "T1"}, "week", "This field is required"),
        ({"tier": "T1", "week": "2025-12-15", "weeks": 2}, "weeks", "unknown parameter"),
    ],
)
def test_bad_params_are_refused_before_anything_is_written(
    params: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(InvalidParams) as caught:
        dispatch("otc.compute", params, trigger_source="api")
    assert message in " ".join(map(str, caught.value.errors[field]))
    assert not Execution.objects.exists()


@pytest.mark.parametrize(
    ("pipeline", "params"),
    [
        ("otc.ingest_file", {"path": "x.psv", "tier": "T1", "week": "2025-12-15"}),
        ("otc.full_etl", {"path": "x.psv", "tier": "OTC", "week": "2025-12-15", "ats": None}),
        (
            "otc.backfill",
            {"tier": "T1", "start": "2025-12-01", "end": "2025-12-15", "directory": "."},
        ),
    ],
)
def test_a_file_without_its_summary_is_refused(
    pipeline: str, params: dict[str, Any], tmp_path: Path
) -> None:
    (tmp_path / "x.psv").write_bytes(file_bytes([row("AAAA", "OTCN", 10, 1)]))
    with pytest.raises(InvalidParams) as caught:
        dispatch(pipeline, params, trigger_source="api")
    assert caught.value.errors == {"ats": [ATS_REQUIRED]}
    assert "true for the ATS summary, false for the non-ATS (OTC) summary" in ATS_REQUIRED
    assert not Execution.objects.exists()
    assert_nothing_stored()


def test_backfill_range_is_checked() -> None:
    with pytest.raises(InvalidParams, match="is before start week"):
        dispatch(
            "otc.backfill",
            {
                "tier": "T1",
                "start": "2025-12-15",
                "end": "2025-12-01",
                "directory": ".",
                "ats": True,
            },
            trigger_source="api",
        )
    with pytest.raises(InvalidParams, match="at most 520 per backfill"):
        dispatch(
            "otc.backfill",
            {
                "tier": "T1",
                "start": "2014-01-06",
                "end": "2025-12-01",
                "directory": ".",
                "ats": False,
            },
            trigger_source="api",
        )


# --- the three stages and the full ETL ------------------------------------------------------


def test_full_etl_on_the_real_file(real_otc_in_inbox: str) -> None:
    execution = run(
        "otc.full_etl", path=real_otc_in_inbox, tier="OTCE", week="2025-12-15", ats=True
    )

    assert execution.status == S.SUCCEEDED, execution.error
    assert execution.result["status"] == "created"
    assert execution.result["grade"] == "A"
    assert execution.result["steps"]["ingest"]["rows"] == 5328
    assert execution.result["steps"]["normalize"]["rows"] == 5328
    assert execution.result["steps"]["compute"]["counts"]["symbol_summaries"] == 3111
    steps = [step for kind, step in events(execution) if kind == "step_finished"]
    assert steps == ["ingest", "normalize", "compute"]
    capture = current_capture(tier="OTC", week="2025-12-15", ats=True)
    assert capture is not None and capture.execution_id == execution.pk and capture.ats
    assert capture.computed_at is not None and capture.quality_grade == "A"

    again = run("otc.full_etl", path=real_otc_in_inbox, tier="OTC", week="2025-12-19", ats=True)
    assert again.status == S.SUCCEEDED
    assert again.result["status"] == "unchanged"
    assert again.result["capture_id"] == capture.pk
    assert [step for kind, step in events(again) if kind == "step_finished"] == ["ingest"]


def test_stages_as_separate_pipelines(tmp_path: Path) -> None:
    path = write_file(tmp_path, [row("AAAA", "OTCN", 10, 1), row("AAAA", "OTCX", 30, 3)])
    week = {"tier": "OTC", "week": "2025-12-16", "ats": False}

    ingest = run("otc.ingest_file", path=path.name, **week)
    assert ingest.status == S.SUCCEEDED
    assert ingest.result["status"] == "created" and ingest.result["week"] == "2025-12-15"
    normalize = run("otc.normalize", **week)
    assert normalize.result == {
        "status": "normalized",
        "capture_id": ingest.result["capture_id"],
        "rows": 2,
        "duplicates": 0,
    }
    compute = run("otc.compute", **week)
    assert compute.status == S.SUCCEEDED and compute.result["grade"] == "A"
    summary = SymbolWeekSummary.objects.get()
    assert (summary.total_volume, summary.top_venue_mpid, str(summary.hhi)) == (
        40,
        "OTCX",
        "6250.0000",
    )


def test_normalize_without_a_capture_fails_clearly() -> None:
    execution = run("otc.normalize", tier="T2", week="2025-12-15", ats=True)
    assert execution.status == S.FAILED
    assert execution.error == (
        "CaptureNotFound: no capture for T2 ATS week 2025-12-15: ingest it first (otc.ingest_file)"
    )


def test_a_bad_file_fails_the_execution_and_leaves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "bad.psv"
    path.write_bytes(b"tierDescription,issueSymbolIdentifier\n")
    execution = run("otc.full_etl", path=path.name, tier="T1", week="2025-12-15", ats=False)
    assert execution.status == S.FAILED
    assert execution.error == (
        "FileFormatError: line 1: expected '|' delimiter, found ','-delimited header"
    )
    assert_nothing_stored()


def test_missing_file_fails_the_execution(tmp_path: Path) -> None:
    execution = run("otc.ingest_file", path="no.psv", tier="T1", week="2025-12-15", ats=True)
    assert execution.status == S.FAILED
    assert execution.error == "FileNotFoundError: no such file in the inbox: no.psv"


def test_quality_gate_f_fails_compute_with_the_reasons(tmp_path: Path) -> None:
    lines = [row("AAAA", "OTCN", 10, 1)] + [row(f"B{i:03d}", "OTCN", "x", 1) for i in range(3)]
    execution = run(
        "otc.full_etl",
        path=write_file(tmp_path, lines).name,
        tier="OTC",
        week=date(2025, 12, 15).isoformat(),
        ats=False,
    )

    assert execution.status == S.FAILED
    assert execution.error.startswith("QualityGateFailed: quality gate failed for capture")
    assert "reject rate 75.0% (3 of 4 rows)" in execution.error
    report = QualityReport.objects.get()
    assert report.grade == "F" and report.failures == ["reject rate 75.0% (3 of 4 rows)"]
    capture = Capture.objects.get()
    assert (capture.quality_grade, capture.computed_at) == ("F", None)
    assert not SymbolWeekSummary.objects.exists()
    assert not VenueMarketShare.objects.exists()
    assert capture.normalized_at is not None  # the valid capture stays for a re-run


# --- backfill ------------------------------------------------------------------------------


def test_backfill_dispatches_one_child_per_week_on_the_backfill_lane(tmp_path: Path) -> None:
    generate_weeks(
        tmp_path, tier="T1", start_week=date(2025, 11, 3), weeks=3, rows=300, seed=7, ats=False
    )
    (tmp_path / "finra_t1_non_ats_20251110.psv").unlink()

    parent = run(
        "otc.backfill", tier="T1", start="2025-11-05", end="2025-11-23", directory=".", ats=False
    )

    assert parent.status == S.SUCCEEDED, parent.error
    assert parent.result["dispatched"] == 2
    assert parent.result["missing_weeks"] == ["2025-11-10"]
    children = list(Execution.objects.filter(parent=parent).order_by("created_at"))
    assert [c.pipeline for c in children] == ["otc.full_etl", "otc.full_etl"]
    assert {c.lane for c in children} == {"backfill"}
    assert [c.params["week"] for c in children] == ["2025-11-03", "2025-11-17"]
    assert [c.params["ats"] for c in children] == [False, False]
    for child in children:
        child.refresh_from_db()
        assert child.status == S.SUCCEEDED, child.error
    weeks = sorted(Capture.objects.values_list("week", flat=True))
    assert weeks == [date(2025, 11, 3), date(2025, 11, 17)]


def test_backfill_without_any_file_fails(tmp_path: Path) -> None:
    execution = run(
        "otc.backfill", tier="T2", start="2025-11-03", end="2025-11-10", directory=".", ats=True
    )
    assert execution.status == S.FAILED
    assert execution.error.startswith("FileNotFoundError: no files for T2 weeks 2025-11-03")
