"""File intake over the API: inbox paths only, uploads, and who may read executions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from dlq.models import DeadLetter
from executions.models import Execution, ExecutionEvent, ExecutionStatus
from otc.models import Capture
from otc.params import ATS_REQUIRED
from tests.api.conftest import assert_error, make_user, token_client
from tests.otc.etl_support import file_bytes, row

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]

EXECUTIONS = "/api/v1/executions/"
UPLOAD = "/api/v1/otc/files/"
MARKER = "SPINE-SECRET-MARKER-7f3a9c"


@pytest.fixture
def secret_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A file outside the inbox whose first line is a secret nobody may ever see."""
    path = tmp_path_factory.mktemp("outside") / "secret.psv"
    path.write_text(f"{MARKER}=hunter2|{MARKER}\nsecond|line\n")
    return path


def submit(client: APIClient, pipeline: str, **params: Any) -> Any:
    return client.post(EXECUTIONS, {"pipeline": pipeline, "params": params}, format="json")


def week_params() -> dict[str, Any]:
    return {"tier": "OTC", "week": "2025-12-15", "ats": True}


def every_stored_text() -> str:
    """Everything the ledger and the dead-letter queue hold, as one text."""
    parts: list[str] = []
    for execution in Execution.objects.all():
        parts += [execution.error or "", execution.traceback or "", json.dumps(execution.result)]
        parts.append(json.dumps(execution.params))
    parts += [json.dumps(e.data) for e in ExecutionEvent.objects.all()]
    for letter in DeadLetter.objects.all():
        parts += [json.dumps({f.name: str(getattr(letter, f.name)) for f in letter._meta.fields})]
    return "\n".join(parts)


# --- inbox paths at validation -------------------------------------------------------------


@pytest.mark.parametrize("pipeline", ["otc.ingest_file", "otc.full_etl"])
def test_paths_outside_the_inbox_are_refused_and_nothing_is_recorded(
    operator_client: APIClient, inbox: Path, secret_file: Path, pipeline: str
) -> None:
    (inbox / "escape.psv").symlink_to(secret_file)
    (inbox / "linked").symlink_to(secret_file.parent, target_is_directory=True)
    (inbox / "week.psv").write_bytes(file_bytes([row("AAAA", "OTCN", 1, 1)]))
    refused = {
        "/proc/self/environ": "absolute path",
        "/etc/passwd": "absolute path",
        str(secret_file): "absolute path",
        str(inbox / "week.psv"): "absolute path",  # absolute, even inside the inbox
        "../x": "'..'",
        "a/../../x": "'..'",
        "escape.psv": "outside the inbox",
        "linked/secret.psv": "outside the inbox",
        "week\x00.psv": "NUL",
        "": "blank",
    }
    before = Execution.objects.count()
    for path, reason in refused.items():
        response = submit(operator_client, pipeline, path=path, **week_params())
        error = assert_error(response, 400, "invalid_params")
        message = " ".join(error["details"]["params"]["path"])
        assert reason in message or (reason == "blank" and "blank" in message.lower()), (
            path,
            message,
        )
        assert MARKER not in response.content.decode()
    assert Execution.objects.count() == before
    assert MARKER not in every_stored_text()


def test_backfill_directory_outside_the_inbox_is_refused(
    operator_client: APIClient, inbox: Path, secret_file: Path
) -> None:
    (inbox / "elsewhere").symlink_to(secret_file.parent, target_is_directory=True)
    for directory in ("/etc", "..", "../outside", "elsewhere"):
        response = submit(
            operator_client,
            "otc.backfill",
            tier="T1",
            start="2025-11-03",
            end="2025-11-10",
            directory=directory,
            ats=True,
        )
        assert_error(response, 400, "invalid_params")
    assert not Execution.objects.exists()


@pytest.mark.parametrize(
    ("pipeline", "params"),
    [
        ("otc.full_etl", {"path": "week.psv", "tier": "OTC", "week": "2025-12-15"}),
        ("otc.ingest_file", {"path": "week.psv", "tier": "OTC", "week": "2025-12-15"}),
        (
            "otc.backfill",
            {"tier": "OTC", "start": "2025-12-01", "end": "2025-12-15", "directory": "."},
        ),
    ],
)
def test_a_file_run_without_its_summary_is_400_naming_ats(
    operator_client: APIClient, inbox: Path, pipeline: str, params: dict[str, Any]
) -> None:
    (inbox / "week.psv").write_bytes(file_bytes([row("AAAA", "OTCN", 1, 1)]))
    error = assert_error(submit(operator_client, pipeline, **params), 400, "invalid_params")
    assert error["details"]["params"] == {"ats": [ATS_REQUIRED]}
    assert "true for the ATS summary, false for the non-ATS (OTC) summary" in ATS_REQUIRED
    assert not Execution.objects.exists() and not Capture.objects.exists()


def test_a_file_in_the_inbox_is_accepted_by_its_relative_path(
    operator_client: APIClient, inbox: Path
) -> None:
    (inbox / "in").mkdir()
    response = submit(operator_client, "otc.ingest_file", path="./in/week.psv", **week_params())
    assert response.status_code == 202, response.json()
    assert response.json()["params"]["path"] == "in/week.psv"


# --- uploads ---------------------------------------------------------------------------------


def upload(client: APIClient, content: bytes, **fields: Any) -> Any:
    form = {
        "file": SimpleUploadedFile("week 51.psv", content),
        "tier": "OTC",
        "week": "2025-12-17",
        "ats": "false",
        **fields,
    }
    return client.post(UPLOAD, {k: v for k, v in form.items() if v is not None}, format="multipart")


def inbox_files(inbox: Path) -> list[Path]:
    return sorted(p for p in inbox.rglob("*") if p.is_file())


@pytest.fixture
def good_week() -> bytes:
    return file_bytes(
        [row("AAAA", "OTCN", 600, 6), row("AAAA", "OTCX", 400, 4), row("BBBB", "OTCN", 50, 5)]
    )


def test_upload_runs_the_full_etl_and_answers_202_with_the_execution(
    settings: Any,
    operator_client: APIClient,
    inbox: Path,
    good_week: bytes,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.EXECUTION_BACKEND = "local"
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(operator_client, good_week, ats="true")
    assert response.status_code == 202, response.json()
    body = response.json()
    assert set(body) >= {"id", "pipeline", "params", "status", "events_url"}
    assert body["pipeline"] == "otc.full_etl" and body["trigger_source"] == "api"
    params = body["params"]
    assert params["tier"] == "OTC" and params["week"] == "2025-12-15" and params["ats"] is True
    assert params["path"].startswith("uploads/") and params["path"].endswith("-week_51.psv")
    assert (inbox / params["path"]).read_bytes() == good_week
    assert response["Location"].endswith(f"{EXECUTIONS}{body['id']}/")
    done = operator_client.get(response["Location"]).json()
    assert done["status"] == ExecutionStatus.SUCCEEDED, done
    capture = Capture.objects.get()
    assert (capture.tier, capture.ats, capture.row_count) == ("OTC", True, 3)
    assert capture.source == params["path"]


def test_upload_for_ingest_only_and_unknown_pipeline(
    operator_client: APIClient, inbox: Path, good_week: bytes
) -> None:
    response = upload(operator_client, good_week, pipeline="otc.ingest_file")
    assert response.status_code == 202 and response.json()["pipeline"] == "otc.ingest_file"
    error = assert_error(
        upload(operator_client, good_week, pipeline="ops.sweep"), 400, "validation_error"
    )
    assert "pipeline" in error["details"]
    assert Execution.objects.count() == 1 and len(inbox_files(inbox)) == 1


def test_upload_over_the_limit_is_413_and_nothing_is_kept(
    settings: Any, operator_client: APIClient, inbox: Path, good_week: bytes
) -> None:
    settings.SPINE_UPLOAD_MAX_BYTES = len(good_week) - 1
    error = assert_error(upload(operator_client, good_week), 413, "payload_too_large")
    assert error["details"] == {"max_bytes": len(good_week) - 1}
    assert inbox_files(inbox) == [] and not Execution.objects.exists()
    settings.SPINE_UPLOAD_MAX_BYTES = len(good_week)  # exactly at the limit is fine
    assert upload(operator_client, good_week).status_code == 202


def test_upload_declared_far_over_the_limit_is_refused_before_reading(
    settings: Any, operator_client: APIClient, inbox: Path, good_week: bytes
) -> None:
    settings.SPINE_UPLOAD_MAX_BYTES = 10
    response = operator_client.post(
        UPLOAD,
        data=b"x" * 16,
        content_type="multipart/form-data; boundary=b",
        CONTENT_LENGTH=str(10 + (1 << 20) + 1),
    )
    assert_error(response, 413, "payload_too_large")
    assert inbox_files(inbox) == [] and not Execution.objects.exists()


def test_upload_needs_add_execution(
    reader_client: APIClient, anon_client: APIClient, inbox: Path, good_week: bytes
) -> None:
    error = assert_error(upload(reader_client, good_week), 403, "permission_denied")
    assert "executions.add_execution" in error["message"]
    assert_error(upload(anon_client, good_week), 401, "not_authenticated")
    assert inbox_files(inbox) == [] and not Execution.objects.exists()


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"ats": None}, "ats"),
        ({"ats": "maybe"}, "ats"),
        ({"tier": "T9"}, "tier"),
        ({"week": "soon"}, "week"),
        ({"file": None}, "file"),
    ],
)
def test_upload_with_a_missing_or_bad_field_is_400_and_nothing_is_kept(
    operator_client: APIClient, inbox: Path, good_week: bytes, fields: dict, field: str
) -> None:
    error = assert_error(upload(operator_client, good_week, **fields), 400, "validation_error")
    assert field in error["details"]
    assert inbox_files(inbox) == [] and not Execution.objects.exists()


@pytest.mark.parametrize("ats", [None, ""])
def test_an_upload_without_its_summary_is_400_naming_ats(
    operator_client: APIClient, inbox: Path, good_week: bytes, ats: str | None
) -> None:
    error = assert_error(upload(operator_client, good_week, ats=ats), 400, "validation_error")
    assert error["details"] == {"ats": [ATS_REQUIRED]}
    assert inbox_files(inbox) == [] and not Execution.objects.exists()
    assert not Capture.objects.exists()


def test_an_empty_upload_is_400(operator_client: APIClient, inbox: Path) -> None:
    error = assert_error(upload(operator_client, b""), 400, "validation_error")
    assert "file" in error["details"]
    assert inbox_files(inbox) == []


def test_upload_is_in_the_schema_as_multipart(anon_client: APIClient) -> None:
    schema = anon_client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    post = schema["paths"]["/api/v1/otc/files/"]["post"]
    assert list(post["requestBody"]["content"]) == ["multipart/form-data"]
    assert {"202", "400", "401", "403", "413"} <= set(post["responses"])
    ref = post["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"]
    request = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert set(request["required"]) == {"file", "tier", "week", "ats"}
    assert request["properties"]["file"]["format"] == "binary"


# --- a secret never shows ------------------------------------------------------------------


def test_a_file_swapped_for_a_symlink_after_validation_is_not_followed(
    settings: Any, operator_client: APIClient, inbox: Path, secret_file: Path, good_week: bytes
) -> None:
    from executions.runner import run_pipeline

    settings.EXECUTION_BACKEND = "stub"
    (inbox / "week.psv").write_bytes(good_week)
    (inbox / "dir").mkdir()
    (inbox / "dir" / "week.psv").write_bytes(good_week)
    first = submit(operator_client, "otc.full_etl", path="week.psv", **week_params())
    second = submit(operator_client, "otc.full_etl", path="dir/week.psv", **week_params())
    assert first.status_code == second.status_code == 202
    # Between validation and the run, the file and a directory become symlinks out.
    (inbox / "week.psv").unlink()
    (inbox / "week.psv").symlink_to(secret_file)
    (inbox / "dir" / "week.psv").unlink()
    (inbox / "dir").rmdir()
    (inbox / "dir").symlink_to(secret_file.parent, target_is_directory=True)
    (secret_file.parent / "week.psv").write_bytes(secret_file.read_bytes())
    for response in (first, second):
        run_pipeline(response.json()["id"], enforce_timeout=False)
    for response in (first, second):
        execution = Execution.objects.get(pk=response.json()["id"])
        assert execution.status == ExecutionStatus.FAILED
        assert "outside the inbox" in execution.error, execution.error
    assert not Capture.objects.exists()
    runs = (first, second)
    bodies = [
        operator_client.get(EXECUTIONS).content,
        *(operator_client.get(f"{EXECUTIONS}{r.json()['id']}/").content for r in runs),
        *(operator_client.get(f"{EXECUTIONS}{r.json()['id']}/events/").content for r in runs),
        make_dlq_client().get("/api/v1/dlq/").content,
    ]
    assert all(MARKER.encode() not in body for body in bodies)
    assert MARKER not in every_stored_text()


def make_dlq_client() -> APIClient:
    return token_client(make_user("dlq-viewer", "dlq.view_deadletter"))


# --- reads of executions are permissioned ------------------------------------------------------


def test_execution_reads_need_view_execution(
    stranger_client: APIClient, reader_client: APIClient, anon_client: APIClient, settings: Any
) -> None:
    settings.EXECUTION_BACKEND = "stub"
    operator = token_client(make_user("submitter", "executions.add_execution"))
    created = submit(operator, "otc.ingest_file", path="week.psv", **week_params())
    assert created.status_code == 202
    execution_id = created.json()["id"]
    paths = [
        EXECUTIONS,
        f"{EXECUTIONS}{execution_id}/",
        f"{EXECUTIONS}{execution_id}/events/",
        "/api/v1/pipelines/",
        "/api/v1/pipelines/otc.full_etl/",
    ]
    for public_read in (False, True):
        settings.SPINE_PUBLIC_READ = public_read
        for path in paths:
            error = assert_error(stranger_client.get(path), 403, "permission_denied")
            assert "executions.view_execution" in error["message"]
            assert_error(operator.get(path), 403, "permission_denied")
            assert_error(anon_client.get(path), 401, "not_authenticated")
            assert reader_client.get(path).status_code == 200, path
    # The OTC analytics stay readable by any signed-in client, and by anyone with
    # public read on.
    assert stranger_client.get("/api/v1/otc/weeks/").status_code == 200
    assert anon_client.get("/api/v1/otc/weeks/").status_code == 200


def test_a_large_upload_streams_through_in_chunks_and_the_limit_holds(
    settings: Any, operator_client: APIClient, inbox: Path
) -> None:
    """Past Django's in-memory size (2.5 MB) the file goes to a temporary file in
    chunks; the limit is counted over every chunk."""
    lines = [row(f"S{i:05d}", "OTCN", i + 1, 1) for i in range(40_000)]
    content = file_bytes(lines)
    assert len(content) > settings.FILE_UPLOAD_MAX_MEMORY_SIZE
    settings.SPINE_UPLOAD_MAX_BYTES = len(content) - 1
    assert_error(upload(operator_client, content), 413, "payload_too_large")
    assert inbox_files(inbox) == [] and not Execution.objects.exists()
    settings.SPINE_UPLOAD_MAX_BYTES = len(content)
    response = upload(operator_client, content)
    assert response.status_code == 202, response.json()
    assert (inbox / response.json()["params"]["path"]).read_bytes() == content
