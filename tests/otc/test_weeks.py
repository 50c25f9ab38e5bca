"""Reporting weeks in a sane range: from FINRA's first (2014) through the current week,
refused alike by the params (400 via the API), the shell (exit 2) and the services."""

from __future__ import annotations

import subprocess
import sys
from datetime import date, timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from executions.dispatcher import dispatch
from executions.models import Execution
from executions.registry import InvalidParams
from otc.services import ingest_file
from otc.weeks import FIRST_WEEK, current_week, reporting_week
from tests.api.conftest import assert_error, make_user, token_client
from tests.otc.etl_support import assert_nothing_stored, row, write_file

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
#: Out of range: the ends of the calendar, far future, the week before 2014's first.
BAD_WEEKS = ["0001-01-01", "9999-12-31", "2099-01-05", "2013-12-30"]
WEEK_PIPELINES = ["otc.ingest_file", "otc.full_etl", "otc.normalize", "otc.compute"]


THIS_WEEK = current_week()


@pytest.fixture(autouse=True)
def local_backend(settings: Any) -> None:
    settings.EXECUTION_BACKEND = "local"


@pytest.fixture(autouse=True)
def pinned_week(monkeypatch: pytest.MonkeyPatch) -> None:
    """The current week stays the one this module started in, so no test depends on
    the clock passing midnight between Sunday and Monday while it runs."""
    monkeypatch.setattr("otc.weeks.current_week", lambda: THIS_WEEK)
    monkeypatch.setattr("otc.cli.generate.current_week", lambda: THIS_WEEK)


def next_week() -> str:
    return (THIS_WEEK + timedelta(days=7)).isoformat()


# --- the rule ----------------------------------------------------------------------


def test_the_first_week_is_the_first_monday_of_2014() -> None:
    assert FIRST_WEEK == date(2014, 1, 6) and FIRST_WEEK.weekday() == 0
    assert reporting_week("2014-01-06") == reporting_week("2014-01-12") == FIRST_WEEK


def test_the_current_week_is_accepted_and_the_next_is_not() -> None:
    assert reporting_week(THIS_WEEK + timedelta(days=6)) == THIS_WEEK
    assert reporting_week(THIS_WEEK.isoformat()) == THIS_WEEK
    with pytest.raises(ValueError, match=r"is in the future: the current week is \d{4}-"):
        reporting_week(next_week())


@pytest.mark.parametrize(
    ("day", "message"),
    [
        ("0001-01-01", "week 0001-01-01 is before 2014-01-06, FINRA's first reporting week"),
        ("2013-12-30", "week 2013-12-30 is before 2014-01-06, FINRA's first reporting week"),
        (
            "2014-01-01",
            "2014-01-01 (week 2013-12-30) is before 2014-01-06, FINRA's first reporting week",
        ),
        ("9999-12-31", "9999-12-31 (week 9999-12-27) is in the future: the current week is "),
        ("2099-01-05", "week 2099-01-05 is in the future: the current week is "),
    ],
)
def test_out_of_range_weeks_are_refused_with_a_one_line_reason(day: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        reporting_week(day)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


# --- params: every pipeline that takes a week ---------------------------------------


@pytest.mark.parametrize("pipeline", WEEK_PIPELINES)
@pytest.mark.parametrize("week", [*BAD_WEEKS, "next"])
def test_week_params_refuse_out_of_range_weeks(pipeline: str, week: str) -> None:
    params = {"tier": "T1", "week": next_week() if week == "next" else week}
    if pipeline in ("otc.ingest_file", "otc.full_etl"):
        params.update(path="week.psv", ats=False)
    with pytest.raises(InvalidParams) as caught:
        dispatch(pipeline, params, trigger_source="api")
    assert list(caught.value.errors) == ["week"]
    assert not Execution.objects.exists()


@pytest.mark.parametrize("week", BAD_WEEKS)
def test_fetch_week_refuses_out_of_range_weeks(week: str) -> None:
    with pytest.raises(InvalidParams) as caught:
        dispatch("otc.fetch_week", {"tier": "T1", "week": week}, trigger_source="api")
    assert list(caught.value.errors) == ["week"]


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [
        ("0001-01-01", "2025-12-01", "start"),
        ("2013-12-30", "2014-02-03", "start"),
        ("2025-12-01", "9999-12-31", "end"),
        ("2025-12-01", "2099-01-05", "end"),
    ],
)
def test_backfill_refuses_out_of_range_weeks(start: str, end: str, field: str) -> None:
    params = {"tier": "T1", "start": start, "end": end, "directory": "weeks", "ats": True}
    with pytest.raises(InvalidParams) as caught:
        dispatch("otc.backfill", params, trigger_source="api")
    assert list(caught.value.errors) == [field]


def test_the_current_week_is_a_valid_param() -> None:
    execution = dispatch(
        "otc.compute", {"tier": "T1", "week": THIS_WEEK.isoformat()}, trigger_source="api"
    )
    assert execution.params["week"] == THIS_WEEK.isoformat()


# --- the API -----------------------------------------------------------------------


@pytest.mark.parametrize("week", BAD_WEEKS)
def test_the_api_answers_400_invalid_params_for_an_out_of_range_week(week: str) -> None:
    client = token_client(make_user("operator", "executions.add_execution"))
    response = client.post(
        "/api/v1/executions/",
        {"pipeline": "otc.compute", "params": {"tier": "T1", "week": week}},
        format="json",
    )
    error = assert_error(response, 400, "invalid_params")
    assert list(error["details"]["params"]) == ["week"]
    assert not Execution.objects.exists()


# --- the shell ---------------------------------------------------------------------


def run_command(*args: str) -> CommandError:
    with pytest.raises(CommandError) as caught:
        call_command(*args, stdout=StringIO(), stderr=StringIO())
    return caught.value


@pytest.mark.parametrize("week", BAD_WEEKS)
def test_otc_ingest_exits_2_for_an_out_of_range_week(tmp_path: Path, week: str) -> None:
    path = write_file(tmp_path, [row("AABB", "OTCN", 1, 1)])
    error = run_command("otc", "ingest", str(path), "--tier", "OTC", "--week", week, "--ats")
    assert error.returncode == 2
    assert "week" in str(error) and ("before 2014-01-06" in str(error) or "future" in str(error))
    assert not Execution.objects.exists()


@pytest.mark.parametrize("week", ["0001-01-01", "9999-12-31"])
def test_otc_fetch_exits_2_for_an_out_of_range_week(week: str) -> None:
    error = run_command("otc", "fetch", "--tier", "T1", "--week", week)
    assert error.returncode == 2
    assert not Execution.objects.exists()


@pytest.mark.parametrize(
    ("start", "end"), [("0001-01-01", "2025-12-01"), ("2025-12-01", "9999-12-31")]
)
def test_backfill_exits_2_for_an_out_of_range_week(tmp_path: Path, start: str, end: str) -> None:
    error = run_command(
        "backfill", "--tier", "T1", "--from", start, "--to", end, "--dir", str(tmp_path), "--ats"
    )
    assert error.returncode == 2
    assert not Execution.objects.exists()


@pytest.mark.parametrize(
    "args",
    [
        ["--start", "2013-12-30"],
        ["--start", "9999-12-31"],
        ["--weeks", "100000"],
        ["--start", "2025-12-01", "--weeks", "100000"],
    ],
)
def test_otc_generate_exits_2_for_weeks_out_of_range(tmp_path: Path, args: list[str]) -> None:
    error = run_command("otc", "generate", "--out", str(tmp_path), "--rows", "1", "--ats", *args)
    assert error.returncode == 2
    assert not list(tmp_path.iterdir())


def test_manage_py_otc_ingest_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    path = write_file(tmp_path, [row("AABB", "OTCN", 1, 1)])
    database = tmp_path / "spine.sqlite3"
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": f"sqlite:///{database}", "HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "manage.py", "otc", "ingest", str(path), "--tier", "OTC"]
        + ["--week", "9999-12-31", "--ats"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr and "OverflowError" not in done.stderr
    assert "9999-12-31 (week 9999-12-27) is in the future" in done.stderr


# --- the services ------------------------------------------------------------------


@pytest.mark.parametrize("week", BAD_WEEKS)
def test_ingest_refuses_out_of_range_weeks_before_writing(tmp_path: Path, week: str) -> None:
    path = write_file(tmp_path, [row("AABB", "OTCN", 1, 1)])
    with pytest.raises(ValueError, match="FINRA's first reporting week|is in the future"):
        ingest_file(path, tier="OTC", week=week, ats=False)
    assert_nothing_stored()
