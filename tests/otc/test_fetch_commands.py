"""``otc fetch`` and ``otc weeks`` against the fake FINRA, and the breaker's health detail."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from datetime import timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pybreaker
import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from executions.backends import get_backend
from executions.cli import event_lines, follow
from executions.models import Execution, ExecutionStatus
from executions.runner import run_pipeline
from otc.cli.fetch import describe
from otc.finra import FinraClientConfig, breaker_for
from otc.health import DETAIL_NAME
from otc.models import Capture
from spine.time import utc_now
from tests.otc import finra_server as fake
from tests.otc.fetch_support import ROWS, WEEK, fetch, publish, venue_rows

pytestmark = [pytest.mark.embedded, pytest.mark.django_db(transaction=True)]

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def otc(*args: str) -> str:
    out = StringIO()
    call_command("otc", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


# -- otc fetch -------------------------------------------------------------------------------


def test_fetch_prints_progress_and_the_capture(
    finra: fake.FakeFinra, finra_config: FinraClientConfig
) -> None:
    publish(finra, venue_rows())

    out = otc("fetch", "--tier", "T1", "--week", "2025-12-03", "--wait")

    capture = Capture.objects.get()
    execution = Execution.objects.get()
    assert execution.trigger_source == "cli"
    lines = out.splitlines()
    assert lines[0] == f"otc.fetch_week T1 ATS week 2025-12-01: {execution.pk}"
    pages = [line for line in lines if line.startswith("  page ")]
    assert len(pages) == 7
    assert pages[0].startswith("  page 1: 10 rows (") and pages[0].endswith(" rows/s)")
    assert pages[-1].startswith(f"  page 7: {ROWS} rows (")
    assert f"  fetch: capture {capture.pk} created, 0 rejects" in lines
    assert "  compute: grade A" in lines
    assert "  reconcile: all 9 symbols match FINRA's totals" in lines
    assert lines[-2].startswith(f"otc.fetch_week {execution.pk} succeeded in ")
    assert lines[-1].startswith(f"capture {capture.pk} created: 7 pages, {ROWS} rows in ")

    again = otc("fetch", "--tier", "t1", "--week", "2025-12-01")

    assert again.splitlines()[-1].startswith(
        f"unchanged: capture {capture.pk} already holds this week (7 pages, {ROWS} rows in "
    )


def test_fetch_non_ats(finra: fake.FakeFinra, finra_config: FinraClientConfig) -> None:
    rows = fake.weekly_rows(7, week=WEEK, tier="OTCE", summary_type="OTC_W_SMBL_FIRM")
    publish(finra, rows, [])

    out = otc("fetch", "--tier", "OTCE", "--week", "2025-12-01", "--non-ats")

    assert out.startswith("otc.fetch_week OTC non-ATS week 2025-12-01: ")
    assert Capture.objects.get().ats is False
    assert "  reconcile: reconciliation with FINRA symbol totals: 1 of 1 symbols differ" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tier", "T3", "--week", "2025-12-01"], "  tier: unknown tier 'T3'"),
        (["--tier", "T1", "--week", "last monday"], "  week: Date has wrong format"),
    ],
)
def test_fetch_bad_input_exits_2_before_anything_runs(
    finra: fake.FakeFinra, finra_config: FinraClientConfig, args: list[str], message: str
) -> None:
    with pytest.raises(CommandError) as refused:
        otc("fetch", *args)

    assert refused.value.returncode == 2
    assert str(refused.value).startswith("invalid params for otc.fetch_week:\n")
    assert message in str(refused.value)
    assert not Execution.objects.exists()
    assert finra.request_count == 0


def test_fetch_needs_tier_and_week() -> None:
    with pytest.raises(CommandError, match="the following arguments are required: --week"):
        otc("fetch", "--tier", "T1")


def test_failed_fetch_exits_1_with_the_execution_error(
    finra: fake.FakeFinra, finra_config: FinraClientConfig, breaker: pybreaker.CircuitBreaker
) -> None:
    publish(finra, venue_rows())
    breaker.open()

    with pytest.raises(CommandError) as failure:
        otc("fetch", "--tier", "T1", "--week", "2025-12-01", "--wait")

    execution = Execution.objects.get()
    assert failure.value.returncode == 1
    assert str(failure.value).startswith(f"otc.fetch_week {execution.pk} failed in ")
    assert "FinraUnavailable: FINRA API unavailable, circuit open until " in str(failure.value)


def test_fetch_on_a_queue_returns_at_once_and_wait_follows_it(
    settings: Any, finra: fake.FakeFinra, finra_config: FinraClientConfig
) -> None:
    publish(finra, venue_rows())
    settings.EXECUTION_BACKEND = "stub"
    get_backend().reset()

    out = otc("fetch", "--tier", "T1", "--week", "2025-12-01")

    assert out.splitlines()[-1] == "queued; follow it with --wait, or in the admin"
    execution = Execution.objects.get()
    assert execution.status == ExecutionStatus.QUEUED
    # A worker picks it up while the command follows it.
    worker = threading.Timer(0.3, run_pipeline, args=[execution.pk])
    worker.start()
    lines: list[str] = []
    try:
        finished = follow(execution, event_lines(lines.append, describe), poll_seconds=0.05)
    finally:
        worker.join()
    assert finished.status == ExecutionStatus.SUCCEEDED
    assert [line for line in lines if line.startswith("  page ")][-1].startswith(
        f"  page 7: {ROWS} rows"
    )


def test_a_bad_tier_exits_2_from_the_shell(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "EXECUTION_BACKEND")} | {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'unused.sqlite3'}"
    }
    done = subprocess.run(
        [sys.executable, "manage.py", "otc", "weeks", "--tier", "T9"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--tier: unknown tier 'T9'" in done.stderr


# -- otc weeks -------------------------------------------------------------------------------


NOT_HELD = {
    "held": False,
    "capture_id": None,
    "quality_grade": None,
    "served_by_finra": True,
    "finra_last_seen": None,
}


def test_weeks_lists_published_weeks_newest_first_marking_held_ones(
    finra: fake.FakeFinra, finra_config: FinraClientConfig
) -> None:
    held_week = WEEK - timedelta(weeks=2)
    publish(finra, venue_rows(week=held_week))
    finra.serve("weeklyDownloadDetails", fake.week_rows(WEEK, 4, summary_type="ATS_W_SMBL"))
    assert fetch(week=held_week).status == ExecutionStatus.SUCCEEDED
    capture = Capture.objects.get()

    data = json.loads(otc("weeks", "--tier", "T1", "--json"))

    assert data == {
        "tier": "T1",
        "ats": True,
        "weeks": [
            {**NOT_HELD, "week": "2025-12-01"},
            {**NOT_HELD, "week": "2025-11-24"},
            {
                "week": "2025-11-17",
                "held": True,
                "capture_id": capture.pk,
                "quality_grade": "A",
                "served_by_finra": True,
                "finra_last_seen": utc_now().date().isoformat(),  # fetched today
            },
            {**NOT_HELD, "week": "2025-11-10"},
        ],
    }
    details = finra.requests[-1].body
    assert details["compareFilters"] == [
        {"compareType": "EQUAL", "fieldName": "summaryTypeCode", "fieldValue": "ATS_W_SMBL"},
        {"compareType": "EQUAL", "fieldName": "tierIdentifier", "fieldValue": "T1"},
    ]
    text = otc("weeks", "--tier", "T1").splitlines()
    assert text[0] == "T1 ATS: 4 weeks published by FINRA, 1 held (newest first)"
    assert text[1:] == [
        "  2025-12-01  -",
        "  2025-11-24  -",
        f"  2025-11-17  held (capture {capture.pk})",
        "  2025-11-10  -",
    ]


def test_weeks_non_ats_asks_for_otc_summaries_and_ignores_ats_captures(
    finra: fake.FakeFinra, finra_config: FinraClientConfig
) -> None:
    publish(finra, venue_rows())
    assert fetch().status == ExecutionStatus.SUCCEEDED  # an ATS capture of WEEK
    finra.serve("weeklyDownloadDetails", fake.week_rows(WEEK, 2, summary_type="OTC_W_SMBL"))

    data = json.loads(otc("weeks", "--tier", "T1", "--non-ats", "--json"))

    assert [(w["week"], w["held"]) for w in data["weeks"]] == [
        ("2025-12-01", False),
        ("2025-11-24", False),
    ]
    assert data["ats"] is False


def test_weeks_reports_finra_trouble(
    finra: fake.FakeFinra, finra_config: FinraClientConfig
) -> None:
    finra.reply_always(fake.Reply(status=403, body={"message": "forbidden"}))

    with pytest.raises(CommandError) as failure:
        otc("weeks", "--tier", "T2")

    assert failure.value.returncode == 1
    assert str(failure.value).startswith(
        "could not list FINRA's weeks: FINRA API returned HTTP 403"
    )


# -- health ----------------------------------------------------------------------------------


def test_ready_shows_the_finra_breaker_without_failing_on_it(settings: Any) -> None:
    # A config of its own, so the process-wide breaker is this test's alone.
    config = FinraClientConfig(breaker_fail_max=2, breaker_reset_timeout=123.25)
    settings.FINRA_CLIENT = config
    breaker = breaker_for(config)
    client = Client()

    closed = client.get("/health/ready").json()
    breaker.open()
    try:
        opened = client.get("/health/ready")
    finally:
        breaker.close()

    assert closed["details"][DETAIL_NAME] == {
        "state": "closed",
        "open_until": None,
        "failures": 0,
        "fail_max": 2,
        "reset_timeout_seconds": 123.25,
        "shared": False,
    }
    body = opened.json()
    assert body["details"][DETAIL_NAME]["state"] == "open"
    assert body["details"][DETAIL_NAME]["open_until"] is not None
    assert body["status"] == closed["status"]  # informational: the status does not move
    assert "finra" not in str(body["checks"]).lower()
