"""File intake for operators: the admin's "Ingest a FINRA file" page, and the shell's
``otc ingest`` / ``backfill`` handing files to the inbox."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from executions.models import Execution, ExecutionStatus
from otc.models import Capture
from otc.params import ATS_REQUIRED
from otc.sample.generator import generate_week, generate_weeks
from tests.ops.conftest import make_user
from tests.support.otc_weeks import FIRST_WEEK

pytestmark = [pytest.mark.embedded]

INGEST = "admin-otc-ingest"
committed = pytest.mark.django_db(transaction=True)


def inbox_files(inbox: Path, under: str) -> list[Path]:
    base = inbox / under
    return sorted(p for p in base.rglob("*") if p.is_file()) if base.exists() else []


@pytest.fixture
def week_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated T1 week outside the inbox (an operator's own file)."""
    path = tmp_path_factory.mktemp("operator") / "finra week.psv"
    generate_week(path, tier="T1", week=FIRST_WEEK, rows=200, seed=11, ats=True)
    return path


def form(path: Path, **fields: Any) -> dict[str, Any]:
    data = {
        "file": SimpleUploadedFile(path.name, path.read_bytes()),
        "tier": "T1",
        "week": "2025-10-08",
        "ats": "false",
        **fields,
    }
    return {k: v for k, v in data.items() if v is not None}


# --- the admin form ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_admin_ingests_an_uploaded_file_end_to_end(
    admin_client: Client,
    local_backend: Any,
    run_immediately: Any,
    inbox: Path,
    week_file: Path,
) -> None:
    page = admin_client.get(reverse(INGEST))
    assert page.status_code == 200
    text = page.content.decode()
    assert 'enctype="multipart/form-data"' in text and 'name="ats"' in text
    with run_immediately():
        response = admin_client.post(reverse(INGEST), form(week_file, ats="true"))
    execution = Execution.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:executions_execution_change", args=[execution.pk])
    assert execution.status == ExecutionStatus.SUCCEEDED, execution.error
    assert execution.trigger_source == "admin" and execution.pipeline == "otc.full_etl"
    path = execution.params["path"]
    assert path.startswith("uploads/") and path.endswith("-finra_week.psv")
    assert execution.params | {"path": ""} == {
        "path": "",
        "tier": "T1",
        "week": "2025-10-06",
        "ats": True,
    }
    assert (inbox / path).read_bytes() == week_file.read_bytes()
    capture = Capture.objects.get()
    assert (capture.ats, capture.row_count, capture.source) == (True, 200, path)
    followed = admin_client.get(response["Location"])
    assert "full_etl dispatched for uploads/" in followed.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "field"),
    [({"ats": None}, "ats"), ({"tier": "T9"}, "tier"), ({"week": "soon"}, "week")],
)
def test_the_admin_form_needs_every_field(
    admin_client: Client, stub: Any, inbox: Path, week_file: Path, fields: dict, field: str
) -> None:
    response = admin_client.post(reverse(INGEST), form(week_file, **fields))
    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert not Execution.objects.exists() and inbox_files(inbox, "uploads") == []


@pytest.mark.django_db
def test_the_admin_form_asks_which_summary_with_nothing_preselected(
    admin_client: Client, stub: Any, inbox: Path, week_file: Path
) -> None:
    page = admin_client.get(reverse(INGEST)).content.decode()
    choice = page[
        page.index('<select name="ats"') : page.index("</select>", page.index('name="ats"'))
    ]
    assert "ATS summary" in choice and "non-ATS (OTC) summary" in choice
    assert "selected" not in choice.replace('<option value="" selected>', "")
    for missing in (None, ""):
        response = admin_client.post(reverse(INGEST), form(week_file, ats=missing))
        assert response.status_code == 200
        assert response.context["form"].errors["ats"] == [ATS_REQUIRED]
        assert ATS_REQUIRED.split(":")[0] in response.content.decode()
    assert not Execution.objects.exists() and inbox_files(inbox, "uploads") == []
    assert not Capture.objects.exists()


@pytest.mark.django_db
def test_the_admin_form_refuses_a_file_over_the_limit(
    settings: Any, admin_client: Client, stub: Any, inbox: Path, week_file: Path
) -> None:
    settings.SPINE_UPLOAD_MAX_BYTES = 100
    response = admin_client.post(reverse(INGEST), form(week_file))
    assert response.status_code == 200
    assert "larger than the upload limit of 100 bytes" in response.content.decode()
    assert not Execution.objects.exists() and inbox_files(inbox, "uploads") == []


@pytest.mark.django_db
def test_the_admin_form_needs_add_execution(
    client: Client, stub: Any, inbox: Path, week_file: Path
) -> None:
    viewer = make_user("viewer-only", "executions.view_execution", "otc.view_capture")
    client.force_login(viewer)
    assert client.get(reverse(INGEST)).status_code == 403
    assert client.post(reverse(INGEST), form(week_file)).status_code == 403
    captures = client.get(reverse("admin:otc_capture_changelist")).content.decode()
    assert reverse(INGEST) not in captures
    assert not Execution.objects.exists() and inbox_files(inbox, "uploads") == []


@pytest.mark.django_db
def test_the_ingest_page_is_linked_from_executions_and_captures(admin_client: Client) -> None:
    for page in ("admin:executions_execution_changelist", "admin:otc_capture_changelist"):
        assert reverse(INGEST) in admin_client.get(reverse(page)).content.decode()


# --- the shell ----------------------------------------------------------------------------------


@committed
def test_otc_ingest_copies_the_operators_file_into_the_inbox(
    run_command: Any, local_backend: Any, inbox: Path, week_file: Path
) -> None:
    result = run_command(
        "otc", "ingest", str(week_file), "--tier", "T1", "--week", "2025-10-08", "--ats", "--json"
    )
    assert result.code == 0, result.err
    execution = Execution.objects.get()
    path = execution.params["path"]
    assert path.startswith("uploads/") and path.endswith("-finra_week.psv")
    assert (inbox / path).read_bytes() == week_file.read_bytes()
    assert execution.status == ExecutionStatus.SUCCEEDED, execution.error


@pytest.mark.django_db
def test_otc_ingest_of_a_directory_or_fifo_is_bad_input(
    run_command: Any, stub: Any, inbox: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    elsewhere = tmp_path_factory.mktemp("shell")
    os.mkfifo(elsewhere / "pipe")
    week = ["--tier", "T1", "--week", "2025-10-06", "--non-ats"]
    as_dir = run_command("otc", "ingest", str(elsewhere), *week)
    assert as_dir.code == 2 and f"{elsewhere} is a directory, not a file" in as_dir.err
    as_fifo = run_command("otc", "ingest", str(elsewhere / "pipe"), *week)
    assert as_fifo.code == 2 and "is not a regular file (a FIFO)" in as_fifo.err
    assert not Execution.objects.exists() and inbox_files(inbox, "uploads") == []


@committed
def test_backfill_copies_a_directory_outside_the_inbox(
    run_command: Any, local_backend: Any, inbox: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    weeks = tmp_path_factory.mktemp("weeks")
    generate_weeks(weeks, tier="T1", start_week=FIRST_WEEK, weeks=2, rows=200, seed=5, ats=False)
    (weeks / "finra_t1_ats_20251006.psv").write_text("not the non-ATS summary: not copied")
    (weeks / "unrelated.txt").write_text("not copied")
    result = run_command(
        "backfill",
        "--tier",
        "T1",
        "--from",
        "2025-10-06",
        "--to",
        "2025-10-13",
        "--dir",
        str(weeks),
        "--non-ats",
        "--wait",
        "--json",
    )
    assert result.code == 0, result.err
    backfill = Execution.objects.get(pipeline="otc.backfill")
    directory = backfill.params["directory"]
    assert directory.startswith("backfills/")
    copied = sorted(p.name for p in (inbox / directory).iterdir())
    assert copied == ["finra_t1_non_ats_20251006.psv", "finra_t1_non_ats_20251013.psv"]
    children = Execution.objects.filter(pipeline="otc.full_etl").order_by("created_at")
    assert [c.params["path"] for c in children] == [f"{directory}/{name}" for name in copied]
    assert {c.status for c in children} == {ExecutionStatus.SUCCEEDED}
    assert sorted(Capture.objects.values_list("week", flat=True)) == [
        date(2025, 10, 6),
        date(2025, 10, 13),
    ]
