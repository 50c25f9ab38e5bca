"""Staged captures: a bad file for a computed week never replaces it, and says why."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import DatabaseError, OperationalError
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

import otc.services.compute
import otc.services.lifecycle
import otc.services.normalize
import otc.services.partitions
from executions.dispatcher import dispatch
from executions.models import Execution, ExecutionStatus
from otc import selectors
from otc.models import Capture, CaptureState, QualityReport, VenueVolume
from otc.services import compute_capture, ingest_file, normalize_capture
from otc.services.errors import OtcError, QualityGateFailed, StaleCapture, VolumeOutOfRange
from otc.services.sql import MAX_CAPTURE_VOLUME
from spine.time import format_iso, utc_now
from tests.api.conftest import make_user, token_client
from tests.otc.etl_support import WEEK, row, run_etl, write_file

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]

API = "/api/v1/otc"
BIGINT_MAX = 9_223_372_036_854_775_807
VENUES = ("OTCN", "OTCX", "JNST")
PRIOR = WEEK - timedelta(weeks=1)


def good_lines(scale: int = 1) -> list[str]:
    return [
        row(f"S{n:03d}", mpid, (n + 1) * (v + 1) * 100 * scale, (n + v + 1) * scale)
        for n in range(10)
        for v, mpid in enumerate(VENUES)
    ]


#: Each bad file for the good week, and the states its capture may end in.
BAD_FILES: dict[str, tuple[list[str], tuple[str, ...]]] = {
    "wrong tier": (
        [row(f"S{n:03d}", "OTCN", 100, 1, tier="T2") for n in range(5)],
        ("rejected",),
    ),
    "all rejected": ([row(f"S{n:03d}", "OTCN", "many", 1) for n in range(5)], ("rejected",)),
    # Every venue of the prior week is missing: coverage 0% grades F.
    "grade F": ([row(f"S{n:03d}", "ZZZZ", 100, 1) for n in range(5)], ("rejected",)),
    "overflow": (
        [row("S001", "OTCN", BIGINT_MAX, 1), row("S001", "OTCX", BIGINT_MAX, 1)],
        ("failed",),
    ),
    # PostgreSQL cannot index a 1 MB symbol (normalize fails); elsewhere it grades F
    # (a new venue only), and a parser bounding field lengths rejects the row.
    "1 MB symbol": ([row("S" * 1_048_576, "ZZZZ", 100, 1)], ("failed", "rejected")),
}


@pytest.fixture
def client(db: None) -> APIClient:
    return token_client(make_user("analyst"))


@pytest.fixture
def admin(db: None) -> Client:
    user = User.objects.create_superuser("ops", "ops@example.com", "not-used-pw-123")
    browser = Client()
    browser.force_login(user)
    return browser


@pytest.fixture
def good_week(tmp_path: Path) -> int:
    """The prior week and the week itself, computed; the week's capture id."""
    run_etl(write_file(tmp_path, good_lines(2), "prior.psv"), week=PRIOR)
    return run_etl(write_file(tmp_path, good_lines(), "good.psv"))["capture_id"]


def run(pipeline: str, params: dict[str, Any]) -> Execution:
    execution = dispatch(pipeline, params, trigger_source="cli")
    execution.refresh_from_db()
    return execution


def served(client: APIClient) -> dict[str, bytes]:
    """The response bodies a client of the week reads."""
    week = WEEK.isoformat()
    paths = [
        f"venues/?week={week}&tier=OTC",
        f"venues/?week={week}",
        f"venues/OTCN/?week={week}",
        "weeks/",
        f"symbols/?week={week}&tier=OTC",
        f"symbols/?week={week}",
        "symbols/S001/weekly/?tier=OTC",
        f"symbols/S001/venues/?week={week}",
        f"symbols/S001/rolling/?week={week}&tier=OTC",
        "quality/",
    ]
    bodies = {}
    for path in paths:
        response = client.get(f"{API}/{path}")
        assert response.status_code == 200, (path, response.content[:300])
        bodies[path] = response.content
    return bodies


def bad_capture(tmp_path: Path, name: str, lines: list[str]) -> tuple[int, Exception]:
    """Run the ETL on a bad file for the good week; the capture and what it raised."""
    path = write_file(tmp_path, lines, f"{name.replace(' ', '-')}.psv")
    ingested = ingest_file(path, tier="OTC", week=WEEK, ats=False)
    with pytest.raises((OtcError, DatabaseError)) as caught:
        normalize_capture(ingested.capture_id)
        compute_capture(ingested.capture_id)
    return ingested.capture_id, caught.value


def assert_visible(client: APIClient, admin: Client, capture_id: int, state: str) -> dict:
    detail = client.get(f"{API}/captures/{capture_id}/").json()
    assert (detail["state"], detail["current"], detail["promoted_at"]) == (state, False, None)
    assert detail["failure"]
    listed = client.get(f"{API}/captures/", {"state": state}).json()["results"]
    assert capture_id in [c["id"] for c in listed]
    assert capture_id not in [
        c["id"] for c in client.get(f"{API}/captures/", {"current": "true"}).json()["results"]
    ]
    page = admin.get(reverse("admin:otc_capture_change", args=[capture_id])).content.decode()
    assert f"spine-badge-{state}" in page
    changelist = admin.get(reverse("admin:otc_capture_changelist"), {"state": state})
    assert f">{capture_id}<" in changelist.content.decode()
    return detail


def test_every_bad_file_leaves_the_good_week_serving_unchanged(
    tmp_path: Path, good_week: int, client: APIClient, admin: Client, monkeypatch: Any
) -> None:
    before = served(client)
    venues = json.loads(before[f"venues/?week={WEEK.isoformat()}&tier=OTC"])
    assert (venues["count"], venues["results"][0]["capture"]) == (3, good_week)
    assert json.loads(before[f"symbols/?week={WEEK.isoformat()}"])["count"] == 10
    failures = {}

    for name, (lines, states) in BAD_FILES.items():
        capture_id, error = bad_capture(tmp_path, name, lines)
        assert served(client) == before, name
        state = Capture.objects.get(pk=capture_id).state
        assert state in states, (name, state)
        failures[name] = assert_visible(client, admin, capture_id, state)
        assert Capture.objects.get(pk=good_week).state == CaptureState.CURRENT

    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("disk on fire")

    crashes: dict[str, tuple[Any, str, Callable[[], None]]] = {
        "normalize crash": (otc.services.partitions, "publish", lambda: None),
        # After the promotion in the same transaction: it must be rolled back.
        "compute crash": (otc.services.compute, "compute_rolling", lambda: None),
    }
    for scale, (name, (module, attribute, _)) in enumerate(crashes.items(), start=3):
        with monkeypatch.context() as patch:
            patch.setattr(module, attribute, boom)
            path = write_file(tmp_path, good_lines(scale), f"{attribute}.psv")
            ingested = ingest_file(path, tier="OTC", week=WEEK, ats=False)
            with pytest.raises(RuntimeError, match="disk on fire"):
                normalize_capture(ingested.capture_id)
                compute_capture(ingested.capture_id)
        assert served(client) == before, name
        failures[name] = assert_visible(client, admin, ingested.capture_id, "failed")

    assert failures["wrong tier"]["failure"].startswith("quality gate (grade F): no accepted rows")
    assert failures["all rejected"]["rejects"] == 5
    assert "venue coverage 0.0%" in failures["grade F"]["failure"]
    assert failures["grade F"]["quality_report"]["grade"] == "F"
    assert failures["grade F"]["quality_report"]["failures"] == failures["grade F"]["failure"][
        len("quality gate (grade F): ") :
    ].split("; ")
    assert (
        failures["overflow"]["failure"].startswith("normalize: VolumeOutOfRange: capture ")
        and "(largest: S001 with 1.84e+19 shares)" in failures["overflow"]["failure"]
    )
    assert failures["overflow"]["quality_report"] is None
    assert failures["normalize crash"]["failure"] == "normalize: RuntimeError: disk on fire"
    assert failures["compute crash"]["failure"] == "compute: RuntimeError: disk on fire"
    # Nothing of the failed computes is left: only the good weeks have analytics.
    assert set(QualityReport.objects.filter(grade="A").values_list("week", flat=True)) == {
        PRIOR,
        WEEK,
    }


def test_overflow_is_a_clear_failure_not_a_database_error(tmp_path: Path) -> None:
    lines = [row("AAAA", "OTCN", BIGINT_MAX, 1), row("AAAA", "OTCX", BIGINT_MAX, 1)]
    ingested = ingest_file(write_file(tmp_path, lines), tier="OTC", week=WEEK, ats=False)
    with pytest.raises(VolumeOutOfRange, match=r"totals 1\.84e\+19 shares, more than the "):
        normalize_capture(ingested.capture_id)
    capture = Capture.objects.get(pk=ingested.capture_id)
    assert (capture.state, capture.normalized_at) == ("failed", None)
    assert not VenueVolume.objects.exists()
    trades = [row("AAAA", "OTCN", 1, BIGINT_MAX), row("AAAA", "OTCX", 1, 2)]
    ingested = ingest_file(write_file(tmp_path, trades, "t.psv"), tier="OTC", week=PRIOR, ats=False)
    with pytest.raises(VolumeOutOfRange, match=r"9\.22e\+18 trades"):
        normalize_capture(ingested.capture_id)


def test_the_largest_capture_allowed_computes_exactly(tmp_path: Path) -> None:
    half = MAX_CAPTURE_VOLUME // 2
    lines = [row("AAAA", "OTCN", half, half), row("AAAA", "OTCX", half - 1, half)]
    result = run_etl(write_file(tmp_path, lines))
    summary = selectors.symbol_summaries(week=WEEK).get()
    assert (summary.total_volume, summary.total_trades) == (2 * half - 1, 2 * half)
    assert (str(summary.top_venue_share), str(summary.hhi)) == ("50.0000", "5000.0000")
    assert str(summary.avg_trade_size) == "1.0000"
    shares = {v.mpid: str(v.market_share) for v in selectors.venue_shares(week=WEEK)}
    assert shares == {"OTCN": "50.0000", "OTCX": "50.0000"}
    assert result["compute"]["promoted"] is True
    over = [row("AAAA", "OTCN", half, 1), row("AAAA", "OTCX", half + 1, 1)]
    ingested = ingest_file(write_file(tmp_path, over, "over.psv"), tier="OTC", week=WEEK, ats=False)
    with pytest.raises(VolumeOutOfRange):
        normalize_capture(ingested.capture_id)


def test_as_of_answers_from_the_time_a_capture_became_current(
    tmp_path: Path, good_week: int, client: APIClient
) -> None:
    before = utc_now()
    corrected = ingest_file(
        write_file(tmp_path, good_lines(7), "c.psv"), tier="OTC", week=WEEK, ats=False
    )
    normalize_capture(corrected.capture_id)
    staged_at = utc_now()
    assert selectors.current_capture(tier="OTC", week=WEEK).pk == good_week
    assert selectors.current_capture(tier="OTC", week=WEEK, as_of=staged_at).pk == good_week

    compute_capture(corrected.capture_id)

    new = Capture.objects.get(pk=corrected.capture_id)
    old = Capture.objects.get(pk=good_week)
    assert new.ingested_at < staged_at < new.promoted_at == old.superseded_at
    assert selectors.current_capture(tier="OTC", week=WEEK).pk == new.pk
    for instant, expected in ((before, old.pk), (staged_at, old.pk), (utc_now(), new.pk)):
        held = client.get(f"{API}/weeks/", {"tier": "OTC", "as_of": format_iso(instant)}).json()
        assert [w["capture"] for w in held["results"] if w["week"] == WEEK.isoformat()] == [
            expected
        ]
    versions = client.get(f"{API}/captures/", {"week": WEEK.isoformat()}).json()["results"]
    assert [(c["id"], c["state"], c["superseded_by"]) for c in versions] == [
        (new.pk, "current", None),
        (old.pk, "superseded", new.pk),
    ]


def test_a_rejected_capture_is_never_the_prior_week_of_another(tmp_path: Path) -> None:
    bad = [row(f"S{n:03d}", "ZZZZ", 100, 1) for n in range(3)] + [row("S999", "ZZZZ", "x", 1)]
    prior = ingest_file(write_file(tmp_path, bad, "p.psv"), tier="OTC", week=PRIOR, ats=False)
    normalize_capture(prior.capture_id)
    with pytest.raises(QualityGateFailed):
        compute_capture(prior.capture_id)
    run_etl(write_file(tmp_path, good_lines(), "w.psv"))
    report = selectors.quality_report(tier="OTC", week=WEEK)
    assert report is not None and report.prior_capture_id is None
    rolling = selectors.symbol_rolling(tier="OTC", week=WEEK, symbol="S001").get()
    assert rolling.weeks_in_window == 1  # the rejected week is not in the window


@pytest.mark.django_db(transaction=True)
def test_full_etl_re_run_resumes_a_failed_capture(
    tmp_path: Path, settings: Any, monkeypatch: Any
) -> None:
    settings.EXECUTION_BACKEND = "local"
    good = write_file(tmp_path, good_lines(), "good.psv")
    first = run(
        "otc.full_etl", {"path": good.name, "tier": "OTC", "week": WEEK.isoformat(), "ats": False}
    )
    assert first.status == ExecutionStatus.SUCCEEDED, first.error
    corrected = write_file(tmp_path, good_lines(3), "corrected.psv")
    params = {"path": corrected.name, "tier": "OTC", "week": WEEK.isoformat(), "ats": False}

    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("worker lost its disk")

    with monkeypatch.context() as patch:
        patch.setattr(otc.services.compute, "compute_rolling", boom)
        failed = run("otc.full_etl", params)
    assert failed.status == ExecutionStatus.FAILED
    staged_id = failed.events.get(type="step_finished", data__step="ingest").data["result"][
        "capture_id"
    ]
    staged = Capture.objects.get(pk=staged_id)
    assert (staged.state, staged.failure) == (
        "failed",
        "compute: RuntimeError: worker lost its disk",
    )
    assert selectors.current_capture(tier="OTC", week=WEEK).pk == first.result["capture_id"]

    again = run("otc.full_etl", params)

    assert again.status == ExecutionStatus.SUCCEEDED, again.error
    result = again.result
    assert (result["status"], result["capture_id"]) == ("resumed", staged_id)
    assert result["steps"]["normalize"]["status"] == "already_normalized"
    assert (result["promoted"], result["superseded_capture_id"]) == (
        True,
        first.result["capture_id"],
    )
    assert Capture.objects.count() == 2
    assert selectors.current_capture(tier="OTC", week=WEEK).pk == staged_id
    assert Capture.objects.get(pk=staged_id).failure == ""
    # The current capture's file again: a no-op.
    unchanged = run("otc.full_etl", params)
    assert unchanged.result["status"] == "unchanged"
    assert list(unchanged.result["steps"]) == ["ingest"]


@pytest.mark.django_db(transaction=True)
def test_compute_pipeline_targets_the_newest_capture_or_the_one_named(
    tmp_path: Path, settings: Any
) -> None:
    settings.EXECUTION_BACKEND = "local"
    good = run_etl(write_file(tmp_path, good_lines(), "good.psv"))["capture_id"]
    bad_lines = [row("S001", "OTCN", 100, 1), *(row(f"B{n}", "OTCN", "x", 1) for n in range(3))]
    bad = ingest_file(write_file(tmp_path, bad_lines, "bad.psv"), tier="OTC", week=WEEK, ats=False)
    week = {"tier": "OTC", "week": WEEK.isoformat()}

    normalized = run("otc.normalize", week)
    assert normalized.result["capture_id"] == bad.capture_id
    newest = run("otc.compute", week)
    assert newest.status == ExecutionStatus.FAILED
    assert newest.error.startswith(
        f"QualityGateFailed: quality gate failed for capture {bad.capture_id}"
    )
    assert Capture.objects.get(pk=bad.capture_id).state == CaptureState.REJECTED

    named = run("otc.compute", {**week, "capture": good})
    assert named.status == ExecutionStatus.SUCCEEDED, named.error
    assert (named.result["capture_id"], named.result["promoted"]) == (good, False)
    assert Capture.objects.get(pk=good).state == CaptureState.CURRENT

    other_week = run("otc.compute", {**week, "week": PRIOR.isoformat(), "capture": good})
    assert other_week.error == (
        f"CaptureNotFound: capture {good} is not a capture of OTC non-ATS week {PRIOR.isoformat()}"
    )


def test_an_older_staged_capture_cannot_take_over_from_a_newer_one(tmp_path: Path) -> None:
    older = ingest_file(
        write_file(tmp_path, good_lines(), "a.psv"), tier="OTC", week=WEEK, ats=False
    )
    newer = ingest_file(
        write_file(tmp_path, good_lines(2), "b.psv"), tier="OTC", week=WEEK, ats=False
    )
    for staged in (older, newer):
        normalize_capture(staged.capture_id)
    assert compute_capture(newer.capture_id).promoted

    with pytest.raises(StaleCapture, match=f"capture {newer.capture_id}, ingested after it"):
        compute_capture(older.capture_id)
    assert Capture.objects.get(pk=older.capture_id).state == CaptureState.FAILED
    assert selectors.current_capture(tier="OTC", week=WEEK).pk == newer.capture_id


def test_the_original_error_wins_when_the_failure_cannot_be_recorded(
    tmp_path: Path, monkeypatch: Any
) -> None:
    def down(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("the database went away")

    ingested = ingest_file(
        write_file(tmp_path, [row("A", "OTCN", BIGINT_MAX, 1), row("A", "OTCX", 9, 1)]),
        tier="OTC",
        week=WEEK,
        ats=False,
    )
    monkeypatch.setattr(otc.services.lifecycle, "mark_pending", down)
    with pytest.raises(VolumeOutOfRange):
        normalize_capture(ingested.capture_id)
    assert Capture.objects.get(pk=ingested.capture_id).state == CaptureState.STAGED
