"""``GET /api/v1/otc/captures/{id}/lines/``: a capture's raw lines from the archive (on
the filesystem and on a real S3 server), bounded parameters, and the archive's errors."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from rest_framework.test import APIClient

from otc import archive
from otc.models import Capture
from otc.services import ingest_file
from tests.api.conftest import assert_error

pytestmark = pytest.mark.django_db

REAL_WEEK = date(2025, 12, 15)


def _ingest(path: Path, *, archived: bool = True) -> Capture:
    """The file ingested by the services (which archive its bytes under the capture's
    checksum); ``archived=False`` then loses the archive object."""
    capture = Capture.objects.get(
        pk=ingest_file(path, tier="OTC", week=REAL_WEEK, ats=True).capture_id
    )
    if not archived:
        archive.archive_storage().delete(archive.object_name(capture.checksum))
    return capture


def _lines_url(capture_id: int) -> str:
    return f"/api/v1/otc/captures/{capture_id}/lines/"


def _file_texts(path: Path) -> list[str]:
    return [archive.line_text(line) for line in path.read_bytes().split(b"\n") if line]


def test_every_line_of_the_real_week_is_served(
    archive_kind: str, real_otc_file: Path, stranger_client: APIClient
) -> None:
    capture = _ingest(real_otc_file)
    expected = _file_texts(real_otc_file)
    served: list[str] = []
    start = 1
    while True:
        response = stranger_client.get(_lines_url(capture.pk), {"start": start, "count": 1000})
        assert response.status_code == 200, response.content[:300]
        body = response.json()
        assert set(body) == {"capture", "start", "line_count", "lines"}
        assert body["capture"] == capture.pk and body["start"] == start
        assert body["line_count"] == 5_329
        if not body["lines"]:
            break
        assert [item["line"] for item in body["lines"]] == list(
            range(start, start + len(body["lines"]))
        )
        served += [item["text"] for item in body["lines"]]
        start += len(body["lines"])
    assert served == expected
    assert served[0].startswith("tierDescription|issueSymbolIdentifier|")


@pytest.mark.embedded
def test_defaults_and_crlf_bom_text(
    tmp_path: Path, real_otc_file: Path, stranger_client: APIClient
) -> None:
    data = real_otc_file.read_bytes()
    path = tmp_path / "crlf.psv"
    path.write_bytes(b"\xef\xbb\xbf" + data.replace(b"\n", b"\r\n"))
    capture = Capture.objects.get(
        pk=ingest_file(path, tier="OTC", week=REAL_WEEK, ats=True).capture_id
    )
    with path.open("rb") as handle:
        archive.store(handle)
    body = stranger_client.get(_lines_url(capture.pk)).json()
    assert body["start"] == 1 and len(body["lines"]) == 100
    first = data.split(b"\n")[0].decode()
    assert body["lines"][0] == {"line": 1, "text": "\ufeff" + first}
    assert not any("\r" in item["text"] for item in body["lines"])
    assert body["lines"][99]["text"] == data.split(b"\n")[99].decode()
    past = stranger_client.get(_lines_url(capture.pk), {"start": 99_999}).json()
    assert past["lines"] == [] and past["line_count"] == 5_329


@pytest.mark.embedded
@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"start": "0"}, "start"),
        ({"start": "-3"}, "start"),
        ({"start": "abc"}, "start"),
        ({"start": "99999999999999999999"}, "start"),
        ({"count": "0"}, "count"),
        ({"count": "1001"}, "count"),
        ({"count": "1.5"}, "count"),
    ],
)
def test_bad_parameters_are_400s_naming_them(
    params: dict[str, str], field: str, real_otc_file: Path, stranger_client: APIClient
) -> None:
    capture = _ingest(real_otc_file)
    error = assert_error(
        stranger_client.get(_lines_url(capture.pk), params), 400, "validation_error"
    )
    assert field in error["details"], error


@pytest.mark.embedded
def test_unknown_capture_is_404(stranger_client: APIClient) -> None:
    assert_error(stranger_client.get(_lines_url(999_999_999)), 404, "not_found")


@pytest.mark.embedded
def test_capture_without_archive_object_is_409(
    real_otc_file: Path, stranger_client: APIClient
) -> None:
    capture = _ingest(real_otc_file, archived=False)
    error = assert_error(stranger_client.get(_lines_url(capture.pk)), 409, "not_archived")
    assert f"capture {capture.pk} has no archived bytes" in error["message"]
    assert capture.checksum in error["message"]


def test_corrupted_archive_object_is_a_500_naming_it(
    archive_kind: str, real_otc_file: Path, stranger_client: APIClient
) -> None:
    capture = _ingest(real_otc_file)
    name = archive.object_name(capture.checksum)
    storage = archive.archive_storage()
    storage.delete(name)
    storage.save(name, ContentFile(b"\x28\xb5\x2f\xfd not really zstd"))
    error = assert_error(stranger_client.get(_lines_url(capture.pk)), 500, "archive_corrupted")
    assert f"archive object {name}" in error["message"] and "corrupted" in error["message"]


@pytest.mark.embedded
def test_reads_need_authentication(real_otc_file: Path, anon_client: APIClient) -> None:
    capture = _ingest(real_otc_file)
    assert_error(anon_client.get(_lines_url(capture.pk)), 401, "not_authenticated")
