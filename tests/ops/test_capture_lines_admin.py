"""The admin's "Raw lines" page of a capture: linked from the capture, paged from the
archive, read-only, staff with the capture view permission only."""

from __future__ import annotations

import html
from datetime import date
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import reverse

from otc import archive
from otc.models import Capture
from otc.services import ingest_file
from tests.ops.conftest import make_user

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]


@pytest.fixture
def capture(real_otc_file: Path) -> Capture:
    result = ingest_file(real_otc_file, tier="OTC", week=date(2025, 12, 15), ats=True)
    with real_otc_file.open("rb") as handle:
        archive.store(handle)
    return Capture.objects.get(pk=result.capture_id)


def _url(capture: Capture) -> str:
    return reverse("admin-otc-capture-lines", args=[capture.pk])


def test_capture_page_links_to_its_raw_lines(admin_client: Client, capture: Capture) -> None:
    page = admin_client.get(reverse("admin:otc_capture_change", args=[capture.pk]))
    assert page.status_code == 200
    assert f'href="{_url(capture)}" id="spine-raw-lines">Raw lines</a>' in page.content.decode()


def test_pages_of_lines_with_previous_next_and_go_to(
    admin_client: Client, capture: Capture, real_otc_file: Path
) -> None:
    file_lines = real_otc_file.read_text().split("\n")
    first = admin_client.get(_url(capture))
    assert first.status_code == 200
    text = first.content.decode()
    assert 'id="line-1"' in text and 'id="line-100"' in text and 'id="line-101"' not in text
    assert html.escape(file_lines[0]) in text
    assert "lines 1–100 of 5,329" in text
    assert f'href="{_url(capture)}?start=101&amp;count=100" id="spine-lines-next"' in text
    assert 'id="spine-lines-prev"' not in text and 'name="_save"' not in text
    middle = admin_client.get(_url(capture), {"start": "2500", "count": "50"}).content.decode()
    assert "lines 2,500–2,549 of 5,329" in middle
    assert f'<td class="n">2549</td><td class="t">{html.escape(file_lines[2548])}</td>' in middle
    assert "?start=2450&amp;count=50" in middle and "?start=2550&amp;count=50" in middle
    end = admin_client.get(_url(capture), {"start": "5300"}).content.decode()
    assert "lines 5,300–5,329 of 5,329" in end and 'id="spine-lines-next"' not in end
    past = admin_client.get(_url(capture), {"start": "9000"}).content.decode()
    assert "no lines from 9,000: the file has 5,329" in past


@pytest.mark.parametrize("query", [{"start": "0"}, {"start": "x"}, {"count": "1001"}])
def test_bad_paging_is_a_400_with_a_note(
    admin_client: Client, capture: Capture, query: dict[str, str]
) -> None:
    response = admin_client.get(_url(capture), query)
    assert response.status_code == 400
    assert "must be a whole number from 1 to" in response.content.decode()


def test_archive_problems_are_shown(admin_client: Client, capture: Capture) -> None:
    name = archive.object_name(capture.checksum)
    archive.archive_storage().delete(name)
    missing = admin_client.get(_url(capture))
    assert missing.status_code == 409
    assert f"capture {capture.pk} has no archived bytes" in missing.content.decode()
    archive.archive_storage().save(name, ContentFile(b"junk"))
    corrupted = admin_client.get(_url(capture))
    assert corrupted.status_code == 500
    assert f"archive object {name}" in corrupted.content.decode()


def test_staff_with_view_permission_only(client: Client, capture: Capture) -> None:
    assert client.get(_url(capture)).status_code == 302  # to the admin login
    client.force_login(make_user("plain", "executions.view_execution"))
    assert client.get(_url(capture)).status_code == 403
    client.force_login(make_user("viewer", "otc.view_capture"))
    assert client.get(_url(capture)).status_code == 200
    assert client.get(reverse("admin-otc-capture-lines", args=[999_999])).status_code == 404
    client.force_login(make_user("outsider", "otc.view_capture", staff=False))
    assert client.get(_url(capture)).status_code == 302
