"""The main job: ``manage.py demo`` end to end on the test database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from dlq import services as dlq_services
from dlq.models import DeadLetter
from executions.models import Execution, ExecutionStatus
from otc.models import Capture, VenueMarketShare
from otc.selectors.report import render, week_report
from otc.weeks import scheduled_week

pytestmark = [pytest.mark.embedded, pytest.mark.django_db(transaction=True)]


def test_demo_runs_the_whole_flow(
    run_command: Any, local_backend: Any, tmp_path: Path, settings: Any
) -> None:
    settings.DEBUG = True  # the embedded default: the demo creates the admin user
    result = run_command("demo", "--weeks", "3", "--rows", "400", "--out", str(tmp_path))
    assert result.code == 0, result.err
    out = result.out
    newest = scheduled_week("T1")
    for text in (
        "generated 2 T1 ATS week(s) of 400 rows",
        "its file has not arrived yet",
        "failed as expected",
        "top venues by market share:",
        "HHI leaders",
        "quality grade",
        "Done in",
        "http://127.0.0.1:8000/admin/",
        "http://127.0.0.1:8000/api/docs/",
        "sign in as admin / ",
    ):
        assert text in out, text
    assert out.count(" succeeded ") >= 2
    runs = Execution.objects.filter(pipeline="otc.full_etl").order_by("created_at")
    assert [r.trigger_source for r in runs] == ["cli"] * 3
    assert [r.status for r in runs] == ["succeeded", "succeeded", "failed"]
    assert Capture.objects.filter(computed_at__isnull=False).count() == 2
    assert {r.params["ats"] for r in runs} == {True} and set(
        Capture.objects.values_list("ats", flat=True)
    ) == {True}
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names and all(name.startswith("finra_t1_ats_") for name in names)

    # The late file has arrived: replaying its dead letter (as the admin does) succeeds.
    letter = DeadLetter.objects.get()
    assert letter.execution.params["week"] == newest.isoformat()
    assert (tmp_path / f"finra_t1_ats_{newest:%Y%m%d}.psv").is_file()
    replay = dlq_services.retry(letter, by=None)
    replay.refresh_from_db()
    assert replay.status == ExecutionStatus.SUCCEEDED, replay.error
    assert Capture.objects.filter(week=newest, ats=True, computed_at__isnull=False).exists()

    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.is_staff
    password = out.split("sign in as admin / ")[1].split()[0]
    assert admin.check_password(password)


def test_demo_again_is_safe_and_json(
    run_command: Any, local_backend: Any, tmp_path: Path, settings: Any
) -> None:
    settings.DEBUG = True
    args = ["demo", "--weeks", "2", "--rows", "300", "--out", str(tmp_path)]
    assert run_command(*args).code == 0
    again = run_command(*args, "--json")
    assert again.code == 0, again.err
    data = again.json()
    assert [w["status"] for w in data["weeks"]] == ["succeeded"]
    assert data["weeks"][0]["pipeline"] == "otc.full_etl"
    assert data["report"]["rows"] == 300 and data["report"]["venues"] > 0
    assert len(data["report"]["top_venues"]) == 10
    assert data["admin"] == {"username": "admin", "password": None, "created": False}
    assert data["dead_letter"]["week"] == scheduled_week("T1").isoformat()
    assert Capture.objects.count() == 1  # the unchanged file was a no-op
    assert get_user_model().objects.count() == 1


def test_demo_generates_non_ats_weeks_of_member_firms(
    run_command: Any, local_backend: Any, tmp_path: Path
) -> None:
    args = ["--weeks", "1", "--rows", "300", "--out", str(tmp_path), "--no-superuser"]
    result = run_command("demo", *args, "--non-ats")
    assert result.code == 0, result.err
    assert "generated 1 T1 non-ATS week(s) of 300 rows" in result.out
    assert [p.name for p in tmp_path.iterdir()] == [
        f"finra_t1_non_ats_{scheduled_week('T1'):%Y%m%d}.psv"
    ]
    capture = Capture.objects.get()
    assert capture.ats is False
    venues = set(VenueMarketShare.objects.filter(capture=capture).values_list("mpid", flat=True))
    assert "CDRG" in venues and not venues & {"UBSA", "SGMT", "INCR"}


def test_demo_with_a_real_finra_file(
    run_command: Any, local_backend: Any, real_otc_file: Path
) -> None:
    result = run_command(
        "demo",
        "--file",
        str(real_otc_file),
        "--tier",
        "OTC",
        "--week",
        "2025-12-15",
        "--ats",
        "--no-superuser",
    )
    assert result.code == 0, result.err
    assert Capture.objects.get().ats is True
    assert Execution.objects.get().params["ats"] is True
    assert "rows 5,328" in result.out and "symbols 3,111" in result.out
    assert "venues 9" in result.out and "volume 1,335,995,901 shares" in result.out
    assert "its file has not arrived" not in result.out
    assert "createsuperuser" in result.out
    assert not get_user_model().objects.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--file", "/no/such.psv", "--week", "2025-12-15", "--ats"], "no such file"),
        (["--file", "{real}", "--ats"], "--file needs --week"),
        (["--file", "{real}", "--week", "soon", "--ats"], "--week"),
        (["--file", "{real}", "--week", "2025-12-15"], "--file needs --ats or --non-ats"),
        (["--ats", "--non-ats"], "argument --non-ats: not allowed with argument --ats"),
        (["--tier", "T7"], "unknown tier"),
        (["--weeks", "0"], "--weeks and --rows must be at least 1"),
    ],
)
def test_demo_bad_input(
    run_command: Any, local_backend: Any, real_otc_file: Path, args: list[str], message: str
) -> None:
    result = run_command("demo", *[a.replace("{real}", str(real_otc_file)) for a in args])
    assert result.code == 2 and message in result.err
    assert not Execution.objects.exists() and not Capture.objects.exists()


def test_week_report_numbers(otc_weeks: list[Capture]) -> None:
    capture = otc_weeks[-1]
    report = week_report(tier="T1", week=capture.week)
    assert report is not None and report.capture_id == capture.pk
    assert report.rows == capture.row_count
    shares = [v["share"] for v in report.top_venues]
    assert shares == sorted(shares, reverse=True)
    raw = dict(VenueMarketShare.objects.filter(capture=capture).values_list("mpid", "venue_name"))
    assert all(f"{v['mpid']} {v['name']}" == raw[v["mpid"]] for v in report.top_venues)
    hhis = [s["hhi"] for s in report.hhi_leaders]
    assert hhis == sorted(hhis, reverse=True) and all(0 <= h <= 10_000 for h in hhis)
    assert any("HHI leaders" in line for line in render(report))
    assert week_report(tier="OTC", week=capture.week) is None
