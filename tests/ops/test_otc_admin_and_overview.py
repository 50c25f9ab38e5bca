"""The OTC admin pages, the estimated-count paginator and the operations overview."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from ops.charts import Series, line_chart, nice_ceiling
from ops.overview import executions_by_status, market_share_chart
from otc.models import Capture, QualityReport, Reject, SymbolWeekSummary, VenueVolume
from spine import paginators

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]

SVG = "{http://www.w3.org/2000/svg}"
OTC_LISTS = [
    "capture",
    "reject",
    "qualityreport",
    "symbolweeksummary",
    "venuemarketshare",
    "venuevolume",
    "venue",
    "symbolrolling",
    "venuerolling",
]


def svg_of(html: str) -> ET.Element:
    match = re.search(r"<svg xmlns=.*?</svg>", html, re.S)
    assert match, "no SVG in the page"
    return ET.fromstring(match.group(0))


@pytest.mark.parametrize("model", OTC_LISTS)
def test_otc_changelists_render(admin_client: Client, otc_weeks: list[Capture], model: str) -> None:
    response = admin_client.get(reverse(f"admin:otc_{model}_changelist"))
    assert response.status_code == 200, model
    assert f"/admin/otc/{model}/add/" not in response.content.decode()  # read-only


def test_otc_details_render_read_only(admin_client: Client, otc_weeks: list[Capture]) -> None:
    capture = otc_weeks[-1]
    html = admin_client.get(reverse("admin:otc_capture_change", args=[capture.pk])).content.decode()
    assert capture.checksum in html
    assert f"{capture.row_count:,}" in html
    assert f"/admin/otc/reject/?capture={capture.pk}" in html
    assert 'name="_save"' not in html
    report = QualityReport.objects.filter(capture=capture).first()
    assert report is not None
    html = admin_client.get(
        reverse("admin:otc_qualityreport_change", args=[report.pk])
    ).content.decode()
    assert f"spine-grade-{report.grade}" in html
    assert "venue_count" in html or "venues" in html  # metrics pretty-printed
    summary = SymbolWeekSummary.objects.filter(capture=capture).first()
    response = admin_client.get(reverse("admin:otc_symbolweeksummary_change", args=[summary.pk]))
    assert response.status_code == 200
    assert (
        admin_client.post(
            reverse("admin:otc_capture_delete", args=[capture.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
    assert Capture.objects.filter(pk=capture.pk).exists()


def test_capture_lineage_and_rejects(admin_client: Client, tmp_path: Any) -> None:
    from tests.otc.etl_support import file_bytes, row, run_etl

    # One reject in 21 rows grades C: the capture becomes current, then superseded.
    filler = [row(f"F{i:02d}", "MPID", 10, 1) for i in range(19)]
    first = tmp_path / "first.psv"
    first.write_bytes(
        file_bytes([row("AAA", "MPID", 100, 2), row("BBB", "MPID", "lots", 1), *filler])
    )
    second = tmp_path / "second.psv"
    second.write_bytes(file_bytes([row("AAA", "MPID", 150, 3), *filler]))
    old = run_etl(first, week="2025-12-15")["capture_id"]
    new = run_etl(second, week="2025-12-15")["capture_id"]
    assert Reject.objects.filter(capture_id=old).count() == 1

    html = admin_client.get(reverse("admin:otc_capture_change", args=[old])).content.decode()
    assert reverse("admin:otc_capture_change", args=[new]) in html  # superseded by
    assert "spine-badge-superseded" in html
    listing = admin_client.get(reverse("admin:otc_capture_changelist"), {"state": "superseded"})
    assert f">{old}<" in listing.content.decode()
    rejects = admin_client.get(reverse("admin:otc_reject_changelist"), {"capture": str(old)})
    body = rejects.content.decode()
    assert "lots" in body and "1 reject" in body


def test_symbol_search_is_exact_and_upper_cased(
    admin_client: Client, otc_weeks: list[Capture]
) -> None:
    symbol = SymbolWeekSummary.objects.filter(capture=otc_weeks[0]).first().symbol
    response = admin_client.get(
        reverse("admin:otc_symbolweeksummary_changelist"), {"q": symbol.lower()}
    )
    html = response.content.decode()
    expected = SymbolWeekSummary.objects.filter(symbol=symbol).count()
    assert f"{expected} symbol week summar" in html


def test_estimated_count_only_for_unfiltered_big_tables(
    otc_weeks: list[Capture], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(paginators, "estimated_rows", lambda model, using="default": 2_000_000)
    unfiltered = paginators.EstimatedCountPaginator(VenueVolume.objects.order_by("-id"), 50)
    assert unfiltered.count == 2_000_000 and unfiltered.is_estimate
    filtered = paginators.EstimatedCountPaginator(
        VenueVolume.objects.filter(capture=otc_weeks[0]).order_by("-id"), 50
    )
    assert filtered.count == VenueVolume.objects.filter(capture=otc_weeks[0]).count()
    assert not filtered.is_estimate
    monkeypatch.setattr(paginators, "estimated_rows", lambda model, using="default": 10)
    small = paginators.EstimatedCountPaginator(VenueVolume.objects.order_by("-id"), 50)
    assert small.count == VenueVolume.objects.count() and not small.is_estimate


def test_estimate_is_shown_as_about(
    admin_client: Client, otc_weeks: list[Capture], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(paginators, "estimated_rows", lambda model, using="default": 1_234_567)
    html = admin_client.get(reverse("admin:otc_venuevolume_changelist")).content.decode()
    assert "about 1234567" in html


def test_planner_estimate_on_postgresql(otc_weeks: list[Capture]) -> None:
    if connection.vendor != "postgresql":
        assert paginators.estimated_rows(VenueVolume) is None
        return
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE otc_venuevolume")
    estimate = paginators.estimated_rows(VenueVolume)
    assert estimate is not None and estimate > 0


# --- the overview page and its chart ----------------------------------------------------------


def test_overview_page_renders_counts_freshness_and_chart(
    admin_client: Client, otc_weeks: list[Capture], local_backend: Any, run_immediately: Any
) -> None:
    from executions.dispatcher import dispatch

    with run_immediately():
        dispatch("diag.noop", {}, trigger_source="api")
        dispatch("diag.fail", {}, trigger_source="api")
    response = admin_client.get(reverse("admin-operations-overview"))
    assert response.status_code == 200
    html = response.content.decode()
    assert re.search(r'data-status="succeeded"><span class="n">1</span>', html)
    assert re.search(r'data-status="failed"><span class="n">1</span>', html)
    assert "open dead letter" in html
    latest = otc_weeks[-1]
    assert latest.week.isoformat() in html
    assert f"spine-grade-{latest.quality_grade}" in html
    freshness = html[html.index('id="spine-freshness"') : html.index("Captures not current")]
    assert re.search(r'<time datetime="[^"]+Z" title="[^"]+">[\d-]+ [\d:]{8} UTC</time>', freshness)
    svg = svg_of(html)
    points = svg.findall(f".//{SVG}circle")
    assert points, "the chart has data points"
    labels = {p.get("data-series") for p in points}
    assert "Other" in labels and len(labels) == 7
    # Per week, the plotted shares of the top venues and Other add up to 100 %.
    weeks = sorted({c.week for c in otc_weeks})
    for index in range(len(weeks)):
        total = sum(
            float(p.get("data-value"))
            for p in points
            if p.find(f"{SVG}title").text.split(": ")[0].endswith(weeks[index].isoformat())
        )
        assert total == pytest.approx(100.0, abs=0.05)


def test_index_links_to_the_overview(admin_client: Client) -> None:
    html = admin_client.get(reverse("admin:index")).content.decode()
    assert reverse("admin-operations-overview") in html
    assert reverse("admin:executions_execution_run") in html


def test_overview_without_data_and_requires_staff(client: Client, admin_client: Client) -> None:
    html = admin_client.get(reverse("admin-operations-overview")).content.decode()
    assert "no data yet" in html
    svg_of(html)  # still a well-formed chart
    anonymous = client.get(reverse("admin-operations-overview"))
    assert anonymous.status_code == 302 and "/admin/login/" in anonymous["Location"]


def test_market_share_chart_series(otc_weeks: list[Capture]) -> None:
    chart = market_share_chart("T1", weeks=2, venues=3)
    assert chart.weeks == sorted(c.week for c in otc_weeks)[-2:]
    assert [s.label for s in chart.series][-1] == "Other"
    assert len(chart.series) == 4
    for i in range(2):
        assert sum(s.values[i] for s in chart.series) == pytest.approx(100, abs=0.05)
    # ATS and non-ATS volume are added here, so the chart says so.
    title = ET.fromstring(str(chart.svg)).find(f"{SVG}title").text
    assert "combined (ATS + non-ATS)" in title
    empty = market_share_chart("OTC")
    assert empty.weeks == [] and empty.series == []


def test_line_chart_escapes_and_scales() -> None:
    svg = line_chart(["w1", "w2"], [Series("<A&B>", [10.0, 30.0])], title="t <x>", y_suffix="%")
    root = ET.fromstring(str(svg))
    assert root.find(f"{SVG}title").text == "t <x>"
    assert "&lt;A&amp;B&gt;" in svg
    ys = [float(c.get("cy")) for c in root.findall(f".//{SVG}circle")]
    assert ys[0] > ys[1]  # higher share, higher on the page
    assert nice_ceiling(37) == 50 and nice_ceiling(100) == 100 and nice_ceiling(0) == 1
    single = ET.fromstring(str(line_chart(["only"], [Series("A", [5.0])], title="one")))
    assert len(single.findall(f".//{SVG}circle")) == 1


def test_executions_by_status_counts_last_day(local_backend: Any, run_immediately: Any) -> None:
    from executions.dispatcher import dispatch
    from executions.models import Execution
    from spine.time import ago

    with run_immediately():
        old = dispatch("diag.noop", {}, trigger_source="api")
        dispatch("diag.noop", {}, trigger_source="api")
    Execution.objects.filter(pk=old.pk).update(created_at=ago(hours=25))
    counts = executions_by_status()
    assert counts["succeeded"] == 1 and counts["failed"] == 0 and set(counts) >= {"pending"}


def test_overview_counts_the_captures_that_are_not_current(
    admin_client: Client, tmp_path: Any
) -> None:
    from otc.services import ingest_file, normalize_capture
    from otc.services.errors import VolumeOutOfRange
    from tests.otc.etl_support import file_bytes, row, run_etl

    good = tmp_path / "good.psv"
    good.write_bytes(file_bytes([row("AAA", "MPID", 100, 2)]))
    run_etl(good, week="2025-12-15")
    staged = tmp_path / "staged.psv"
    staged.write_bytes(file_bytes([row("AAA", "MPID", 200, 2)]))
    ingest_file(staged, tier="OTC", week="2025-12-22", ats=False)
    huge = tmp_path / "huge.psv"
    huge.write_bytes(file_bytes([row("AAA", "MPID", 2**62, 1), row("AAA", "OTHR", 2**62, 1)]))
    failed = ingest_file(huge, tier="OTC", week="2025-12-15", ats=False).capture_id
    with pytest.raises(VolumeOutOfRange):
        normalize_capture(failed)

    html = admin_client.get(reverse("admin-operations-overview")).content.decode()
    for state, n in (("staged", 1), ("failed", 1), ("rejected", 0)):
        assert re.search(rf'data-state="{state}"><span class="n">{n}</span>', html), state
    assert reverse("admin:otc_capture_changelist") + "?state=failed" in html


def test_overview_shows_the_workers_panel_and_links_the_dead_letter_groups(
    admin_client: Client, local_backend: Any
) -> None:
    html = admin_client.get(reverse("admin-operations-overview")).content.decode()
    assert 'id="workers-panel"' in html
    assert "local, in-process" in html
    assert f'id="spine-dlq-groups" href="{reverse("admin:dlq_deadletter_groups")}"' in html
