"""``manage.py otc lines``: a capture's raw lines from the archive, as ``N<TAB>text``;
exit 1 when the archive cannot give them."""

from __future__ import annotations

from datetime import date
from io import StringIO
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.core.management.base import CommandError

from otc import archive
from otc.models import Capture
from otc.services import ingest_file

pytestmark = pytest.mark.django_db


def _capture(path: Path, *, archived: bool = True) -> Capture:
    """The file ingested (which archives its bytes); ``archived=False`` then loses the
    archive object, as a capture whose bytes could not be archived has none."""
    capture = Capture.objects.get(
        pk=ingest_file(path, tier="OTC", week=date(2025, 12, 15), ats=True).capture_id
    )
    if not archived:
        archive.archive_storage().delete(archive.object_name(capture.checksum))
    return capture


def _lines(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("otc", "lines", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_prints_numbered_lines_as_in_the_file(archive_kind: str, real_otc_file: Path) -> None:
    capture = _capture(real_otc_file)
    file_lines = real_otc_file.read_bytes().decode().split("\n")
    out, _ = _lines(str(capture.pk), "--start", "5327", "--count", "10")
    assert out.splitlines() == [f"{n}\t{file_lines[n - 1]}" for n in (5327, 5328, 5329)]
    out, _ = _lines(str(capture.pk))
    assert out.splitlines() == [f"{n}\t{file_lines[n - 1]}" for n in range(1, 101)]
    out, err = _lines(str(capture.pk), "--start", "6000")
    assert out == "" and "has 5,329 lines; none from 6,000" in err


@pytest.mark.embedded
def test_archive_failures_exit_1(real_otc_file: Path) -> None:
    capture = _capture(real_otc_file, archived=False)
    with pytest.raises(CommandError, match=f"capture {capture.pk} has no archived") as excinfo:
        _lines(str(capture.pk))
    assert excinfo.value.returncode == 1
    with real_otc_file.open("rb") as handle:
        name = archive.store(handle).name
    archive.archive_storage().delete(name)
    archive.archive_storage().save(name, ContentFile(b"junk"))
    with pytest.raises(CommandError, match=f"archive object {name} .* is corrupted") as excinfo:
        _lines(str(capture.pk))
    assert excinfo.value.returncode == 1
