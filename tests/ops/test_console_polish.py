"""The console as a product: its name and icon, the grouped index, names, numbers, search."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.staticfiles import finders
from django.test import Client
from django.urls import reverse

from otc.models import Capture, SymbolWeekSummary, VenueMarketShare
from spine.templatetags.spine_console import group_app_list

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]


def groups_of(html: str) -> list[str]:
    return re.findall(r'id="spine-group-([a-z-]+)"', html)


def group_html(html: str, slug: str) -> str:
    match = re.search(rf'id="spine-group-{slug}".*?</table>', html, re.S)
    assert match, slug
    return match.group(0)


def test_header_title_and_favicon(admin_client: Client) -> None:
    html = admin_client.get(reverse("admin:index")).content.decode()
    assert re.search(r'<div id="site-name"><a href="/admin/">.*Market Spine</a>', html)
    assert "<title>Operations console | Market Spine</title>" in html
    assert "Django administration" not in html
    icon = re.search(r'<link rel="icon" type="image/svg\+xml" href="([^"]+)">', html)
    assert icon and icon.group(1).endswith("spine/favicon.svg")
    path = finders.find("spine/favicon.svg")
    assert path and "<svg" in open(path).read()
    login = Client().get(reverse("admin:login")).content.decode()
    assert "Market Spine" in login and "favicon.svg" in login


def test_index_is_grouped_by_what_operators_do(admin_client: Client) -> None:
    html = admin_client.get(reverse("admin:index")).content.decode()
    assert groups_of(html) == [
        "operations",
        "dead-letters",
        "otc-data",
        "schedules",
        "users-and-tokens",
        "advanced",
    ]
    operations = group_html(html, "operations")
    assert reverse("admin-operations-overview") in operations
    assert reverse("admin:executions_execution_run") in operations
    assert reverse("admin:executions_execution_changelist") in operations
    assert reverse("admin:dlq_deadletter_changelist") in group_html(html, "dead-letters")
    assert reverse("admin:otc_capture_changelist") in group_html(html, "otc-data")
    assert reverse("admin:django_celery_beat_periodictask_changelist") in group_html(
        html, "schedules"
    )
    users = group_html(html, "users-and-tokens")
    assert reverse("admin:auth_user_changelist") in users and "Tokens" in users
    advanced = group_html(html, "advanced")
    for name in ("taskresult", "groupresult", "crontabschedule", "intervalschedule"):
        assert f"model-{name}" in advanced, name
    for slug in ("operations", "otc-data", "schedules"):
        assert "taskresult" not in group_html(html, slug)


def test_index_for_staff_with_few_permissions(viewer_client: Client) -> None:
    html = viewer_client.get(reverse("admin:index")).content.decode()
    assert groups_of(html) == ["operations", "dead-letters"]
    assert reverse("admin-operations-overview") in html


def test_unknown_models_go_to_advanced() -> None:
    app_list = [
        {"app_label": "thirdparty", "models": [{"object_name": "Thing", "name": "Things"}]},
        {"app_label": "dlq", "models": [{"object_name": "DeadLetter", "name": "Dead letters"}]},
    ]
    groups = group_app_list(app_list)
    assert [g["name"] for g in groups] == ["Operations", "Dead letters", "Advanced"]
    assert groups[-1]["models"][0]["name"] == "Things"


def test_plural_names(admin_client: Client) -> None:
    html = admin_client.get(reverse("admin:index")).content.decode()
    assert "Symbol week summaries" in html
    assert "summarys" not in html.lower() and "rollings" not in html.lower()
    assert SymbolWeekSummary._meta.verbose_name_plural == "symbol week summaries"


def test_volumes_have_thousands_separators_and_ats_is_a_word(
    admin_client: Client, otc_weeks: list[Capture]
) -> None:
    row = SymbolWeekSummary.objects.filter(total_volume__gte=1000).order_by("-week").first()
    assert row is not None
    html = admin_client.get(
        reverse("admin:otc_symbolweeksummary_changelist"), {"q": row.symbol}
    ).content.decode()
    assert f">{row.total_volume:,}<" in html
    assert f">{row.total_volume}<" not in html
    assert ">non-ATS<" in html
    assert 'class="field-ats"' not in html  # no boolean icon column
    share = VenueMarketShare.objects.filter(total_volume__gte=1000).first()
    html = admin_client.get(
        reverse("admin:otc_venuemarketshare_changelist"), {"q": share.mpid}
    ).content.decode()
    assert f">{share.total_volume:,}<" in html
    capture = otc_weeks[-1]
    html = admin_client.get(reverse("admin:otc_capture_changelist")).content.decode()
    assert f"{capture.row_count:,}" in html and "UTC</time>" in html


def test_otc_search_by_prefix_and_by_name(admin_client: Client, otc_weeks: list[Capture]) -> None:
    url = reverse("admin:otc_symbolweeksummary_changelist")
    symbols = set(SymbolWeekSummary.objects.values_list("symbol", flat=True))
    row = next(
        r
        for r in SymbolWeekSummary.objects.exclude(issue_name="").order_by("symbol")
        if r.symbol[:1] not in symbols
    )
    prefix = row.symbol[:1]
    expected = SymbolWeekSummary.objects.filter(symbol__startswith=prefix).count()
    html = admin_client.get(url, {"q": prefix.lower()}).content.decode()
    assert f">{row.symbol}<" in html and f"{expected} symbol week summar" in html
    assert expected > SymbolWeekSummary.objects.filter(symbol=row.symbol).count()
    word = next(
        w
        for w in row.issue_name.split()
        if not any(symbol.startswith(w.upper()) for symbol in symbols)
    )
    by_name = SymbolWeekSummary.objects.filter(issue_name__icontains=word).count()
    html = admin_client.get(url, {"q": word.lower()}).content.decode()
    assert f">{row.symbol}<" in html and f"{by_name} symbol week summar" in html
    venue = VenueMarketShare.objects.exclude(venue_name="").first()
    html = admin_client.get(
        reverse("admin:otc_venuemarketshare_changelist"), {"q": venue.venue_name.lower()}
    ).content.decode()
    assert f">{venue.mpid}<" in html
    nothing = admin_client.get(url, {"q": "no such issue anywhere"}).content.decode()
    assert "0 symbol week summaries" in nothing


def test_key_changelists_keep_few_columns(admin_client: Client, otc_weeks: list[Capture]) -> None:
    """At 1366 px beside the filter sidebar a list has room for about a dozen columns."""
    for model in ("capture", "symbolweeksummary", "venuemarketshare", "venuevolume"):
        html = admin_client.get(reverse(f"admin:otc_{model}_changelist")).content.decode()
        head = re.search(r"<thead>.*?</thead>", html, re.S).group(0)
        assert head.count("<th") <= 13, model
    html = admin_client.get(reverse("admin:executions_execution_changelist")).content.decode()
    assert re.search(r"<thead>.*?</thead>", html, re.S).group(0).count("<th") <= 10


def test_ledger_tables_list_newest_first(admin_client: Client, local_backend: Any) -> None:
    from executions.admin import ExecutionAdmin, ExecutionLockAdmin
    from otc.admin import CaptureAdmin, SymbolWeekSummaryAdmin, VenueAdmin

    for admin_class in (ExecutionAdmin, ExecutionLockAdmin, CaptureAdmin, SymbolWeekSummaryAdmin):
        assert admin_class.ordering[0].startswith("-"), admin_class
    assert VenueAdmin.ordering[0] == "-last_seen_week"


def test_capture_lineage_times_have_seconds_zone_and_tooltips(
    admin_client: Client, otc_weeks: list[Capture]
) -> None:
    from spine.time import format_iso

    capture = otc_weeks[-1]
    html = admin_client.get(reverse("admin:otc_capture_change", args=[capture.pk])).content.decode()
    for moment in (capture.ingested_at, capture.normalized_at, capture.computed_at):
        iso = format_iso(moment)
        assert f'<time datetime="{iso}" title="{iso}">' in html
        assert moment.strftime("%Y-%m-%d %H:%M:%S UTC") in html


def test_sidebar_is_grouped_like_the_index(admin_client: Client) -> None:
    index = admin_client.get(reverse("admin:index")).content.decode()
    page = admin_client.get(reverse("admin:dlq_deadletter_changelist")).content.decode()
    match = re.search(r'<nav class="sticky" id="nav-sidebar".*?</nav>', page, re.S)
    assert match
    sidebar = match.group(0)
    assert re.findall(r'id="spine-nav-([a-z-]+)"', sidebar) == groups_of(index)
    assert reverse("admin-operations-overview") in sidebar
    assert "Celery results" not in sidebar and "Auth token" not in sidebar
    current = re.search(r'<tr class="model-deadletter current-model">.*?</tr>', sidebar, re.S)
    assert current and 'aria-current="page"' in current.group(0)
