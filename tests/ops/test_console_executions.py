"""The executions console: timestamps, durations, the step timeline, live reload, filters."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.admin import helpers
from django.test import Client
from django.urls import reverse

from executions.dispatcher import dispatch
from executions.models import Execution, ExecutionStatus, TriggerSource
from executions.services import record_event
from executions.timeline import execution_steps
from spine.text import human_duration
from spine.time import ago, format_iso

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]

CHANGELIST = reverse("admin:executions_execution_changelist")
SVG = "{http://www.w3.org/2000/svg}"
TIME = re.compile(
    r'<time datetime="(?P<iso>[0-9T:.\-]+Z)" title="(?P=iso)">'
    r"(?P<shown>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC)</time>"
)


def change_url(execution: Execution) -> str:
    return reverse("admin:executions_execution_change", args=[execution.pk])


def run(run_immediately: Any, pipeline: str = "diag.noop", **params: Any) -> Execution:
    with run_immediately():
        execution = dispatch(pipeline, params, trigger_source=TriggerSource.API)
    execution.refresh_from_db()
    return execution


def timeline(html: str) -> ET.Element:
    match = re.search(
        r'<svg xmlns="http://www.w3.org/2000/svg" id="step-timeline".*?</svg>', html, re.S
    )
    assert match, "no step timeline on the page"
    return ET.fromstring(match.group(0))


def bars(svg: ET.Element) -> list[ET.Element]:
    return [r for r in svg.iter(f"{SVG}rect") if r.get("class") == "spine-step"]


def test_human_durations() -> None:
    assert human_duration(None) == "—"
    assert human_duration(0.4) == "0.40 s"
    assert human_duration(42.25) == "42.2 s"
    assert human_duration(125) == "2 min 05 s"
    assert human_duration(3720) == "1 h 02 min"
    assert human_duration(3 * 86400 + 4 * 3600) == "3 d 04 h"


def test_timestamps_show_seconds_and_zone_with_iso_tooltips(
    admin_client: Client, local_backend: Any, run_immediately: Any
) -> None:
    execution = run(run_immediately)
    listing = admin_client.get(CHANGELIST).content.decode()
    shown = TIME.findall(listing)
    assert (
        format_iso(execution.created_at),
        execution.created_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
    ) in shown
    detail = admin_client.get(change_url(execution)).content.decode()
    isos = {iso for iso, _ in TIME.findall(detail)}
    for moment in (execution.created_at, execution.queued_at, execution.started_at):
        assert format_iso(moment) in isos
    assert format_iso(execution.finished_at) in isos
    for event in execution.events.all():  # the event history too
        assert format_iso(event.timestamp) in isos
    assert human_duration(execution.duration_seconds) in detail


def test_timeline_has_one_bar_per_step(
    admin_client: Client, local_backend: Any, run_immediately: Any
) -> None:
    execution = run(run_immediately, "diag.write", rows=2, steps=3)
    assert execution.status == ExecutionStatus.SUCCEEDED, execution.error
    svg = timeline(admin_client.get(change_url(execution)).content.decode())
    drawn = bars(svg)
    assert [b.get("data-step") for b in drawn] == ["0", "1", "2"]
    assert {b.get("data-status") for b in drawn} == {"succeeded"}
    xs = [float(b.get("x")) for b in drawn]
    assert xs == sorted(xs)  # later steps further right on the time axis
    assert all(b.find(f"{SVG}title").text.startswith(b.get("data-step") + ": ") for b in drawn)
    labels = [t.text or "" for t in svg.iter(f"{SVG}text")]
    assert any(re.fullmatch(r"from \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", t) for t in labels)


def test_timeline_steps_pair_started_and_finished_events_and_children(
    local_backend: Any, run_immediately: Any
) -> None:
    parent = run(run_immediately)
    record_event(parent, "step_started", {"step": "ingest"})
    record_event(parent, "step_finished", {"step": "ingest"})
    record_event(parent, "step_started", {"step": "compute"})
    with run_immediately():
        child = dispatch("diag.noop", {}, trigger_source="admin", parent=parent)
    steps = execution_steps(parent)
    assert [(s.name, s.kind) for s in steps] == [
        ("ingest", "step"),
        ("compute", "step"),
        ("diag.noop", "child"),
    ]
    assert steps[2].execution_id == str(child.pk)
    assert steps[0].end is not None and steps[0].status == "succeeded"


def test_an_execution_without_steps_says_so(
    admin_client: Client, stub: Any, run_immediately: Any
) -> None:
    execution = run(run_immediately)
    svg = timeline(admin_client.get(change_url(execution)).content.decode())
    assert bars(svg) == []
    assert "no steps recorded" in ET.tostring(svg, encoding="unicode")


def test_pages_reload_themselves_only_while_something_runs(
    admin_client: Client, stub: Any, run_immediately: Any, settings: Any
) -> None:
    live = run(run_immediately)
    assert live.status == ExecutionStatus.QUEUED
    assert 'data-refresh="5"' in admin_client.get(CHANGELIST).content.decode()
    assert 'data-refresh="5"' in admin_client.get(change_url(live)).content.decode()
    listed = admin_client.get(CHANGELIST).content.decode()
    assert listed.index('<div id="content"') < listed.index('id="spine-refresh"')  # in the column

    settings.EXECUTION_BACKEND = "local"
    done = run(run_immediately)
    assert done.status == ExecutionStatus.SUCCEEDED
    # The list of finished executions only, and a finished execution's page: no reload.
    finished = admin_client.get(CHANGELIST, {"status__exact": "succeeded"}).content.decode()
    assert "data-refresh" not in finished and "location.reload" not in finished
    assert "data-refresh" not in admin_client.get(change_url(done)).content.decode()
    # A finished parent whose child still waits keeps reloading.
    settings.EXECUTION_BACKEND = "stub"
    with run_immediately():
        dispatch("diag.noop", {}, trigger_source="admin", parent=done)
    assert 'data-refresh="5"' in admin_client.get(change_url(done)).content.decode()


def test_created_range_filter(admin_client: Client, stub: Any, run_immediately: Any) -> None:
    old = run(run_immediately)
    new = run(run_immediately)
    Execution.objects.filter(pk=old.pk).update(created_at=ago(days=3))

    def listed(**query: str) -> str:
        response = admin_client.get(CHANGELIST, query)
        assert response.status_code == 200
        return response.content.decode()

    since = (ago(days=1)).date().isoformat()
    html = listed(created_at__gte=since)
    assert str(new.pk)[:8] in html and str(old.pk)[:8] not in html
    html = listed(created_at__lt=since)
    assert str(old.pk)[:8] in html and str(new.pk)[:8] not in html
    both = (ago(days=4).date().isoformat(), (ago(days=-1)).date().isoformat())
    html = listed(created_at__gte=both[0], created_at__lt=both[1], pipeline="diag.noop")
    assert str(old.pk)[:8] in html and str(new.pk)[:8] in html
    assert 'id="spine-created-range"' in html and 'value="diag.noop"' in html  # kept
    assert "Last 24 hours" in html
    bad = admin_client.get(CHANGELIST, {"created_at__gte": "next tuesday"})
    assert bad.status_code == 302 and "e=1" in bad["Location"]


def test_search_by_id_prefix_and_param_values(
    admin_client: Client, stub: Any, run_immediately: Any
) -> None:
    sleep = run(run_immediately, "diag.sleep", seconds=0.5, lock="week-2025-10-06")
    noop = run(run_immediately)
    by_prefix = admin_client.get(CHANGELIST, {"q": str(sleep.pk)[:8]}).content.decode()
    assert str(sleep.pk)[:8] in by_prefix and str(noop.pk)[:8] not in by_prefix
    by_param = admin_client.get(CHANGELIST, {"q": "2025-10-06"}).content.decode()
    assert str(sleep.pk)[:8] in by_param and str(noop.pk)[:8] not in by_param


def test_confirmation_shows_params_as_json(
    admin_client: Client, stub: Any, run_immediately: Any
) -> None:
    execution = run(run_immediately, "diag.sleep", seconds=0.5)
    data = {"action": "cancel_selected", helpers.ACTION_CHECKBOX_NAME: [str(execution.pk)]}
    html = admin_client.post(CHANGELIST, data).content.decode()
    assert "&quot;seconds&quot;: 0.5" in html and "&quot;swallow&quot;: false" in html
    assert "&#x27;seconds&#x27;" not in html and "False" not in html.split("spine-data")[1][:200]


def test_dispatch_message_keeps_the_pipeline_name_as_written(
    admin_client: Client, stub: Any, run_immediately: Any
) -> None:
    with run_immediately():
        response = admin_client.post(
            reverse("admin:executions_execution_run"),
            {"pipeline": "diag.noop", "run-lane": ""},
            follow=True,
        )
    html = response.content.decode()
    assert re.search(r'<li class="success">diag\.noop dispatched', html)
    assert "Diag.noop" not in html


def test_running_duration_counts_up(admin_client: Client, stub: Any, run_immediately: Any) -> None:
    execution = run(run_immediately)
    Execution.objects.filter(pk=execution.pk).update(
        status=ExecutionStatus.RUNNING, started_at=ago(seconds=125) - timedelta(milliseconds=1)
    )
    html = admin_client.get(CHANGELIST).content.decode()
    assert re.search(r"running 2 min 0[5-9] s", html)


def test_event_timeline_rows_have_no_caption(admin_client: Client, run_immediately: Any) -> None:
    page = admin_client.get(change_url(run(run_immediately))).content.decode()
    assert 'id="events-group"' in page
    assert "#events-group td.original p { display: none; }" in page
