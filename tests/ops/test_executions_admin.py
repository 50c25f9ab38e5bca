"""The executions admin: lists, details, cancel / re-run actions, the Run pipeline page."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from django.contrib.admin import helpers
from django.test import Client
from django.urls import reverse

from dlq.services import park
from executions.dispatcher import dispatch
from executions.models import Execution, ExecutionStatus, TriggerSource

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]

CHANGELIST = "admin:executions_execution_changelist"
RUN = "admin:executions_execution_run"


def change_url(execution: Execution) -> str:
    return reverse("admin:executions_execution_change", args=[execution.pk])


def queued(run_immediately: Any, pipeline: str = "diag.noop", **params: Any) -> Execution:
    with run_immediately():
        execution = dispatch(pipeline, params, trigger_source=TriggerSource.API)
    execution.refresh_from_db()
    return execution


def test_changelist_shows_badges_filters_and_run_button(
    admin_client: Client, stub: Any, run_immediately: Any
) -> None:
    execution = queued(run_immediately)
    response = admin_client.get(reverse(CHANGELIST))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'class="spine-badge spine-badge-queued"' in html
    assert str(execution.pk)[:8] in html
    assert reverse(RUN) in html
    assert "Operations overview" in html
    for param in ("status__exact=failed", "pipeline=diag.noop", "lane=backfill", "trigger_source"):
        assert param in html, param


def test_changelist_filters_and_search(
    admin_client: Client, stub: Any, run_immediately: Any
) -> None:
    noop = queued(run_immediately)
    sleep = queued(run_immediately, "diag.sleep", seconds=0.1, lock="needle-lock")
    url = reverse(CHANGELIST)

    def listed(**query: str) -> str:
        response = admin_client.get(url, query)
        assert response.status_code == 200, response.content[:500]
        return response.content.decode()

    html = listed(pipeline="diag.sleep")
    assert str(sleep.pk)[:8] in html and str(noop.pk)[:8] not in html
    html = listed(q="needle-lock")  # params text
    assert str(sleep.pk)[:8] in html and str(noop.pk)[:8] not in html
    html = listed(q=str(noop.pk))  # whole id
    assert str(noop.pk)[:8] in html and str(sleep.pk)[:8] not in html
    html = listed(q=str(noop.pk).replace("-", "")[:10])  # a fragment, as pasted from logs
    assert str(noop.pk)[:8] in html and str(sleep.pk)[:8] not in html
    html = listed(status__exact="queued", lane="default", trigger_source__exact="api")
    assert str(noop.pk)[:8] in html


def test_detail_shows_timeline_result_error_family_and_dead_letter(
    admin_client: Client, local_backend: Any, run_immediately: Any
) -> None:
    with run_immediately():
        failed = dispatch("diag.fail", {"message": "boom <b>"}, trigger_source="api")
    failed.refresh_from_db()
    assert failed.status == ExecutionStatus.FAILED
    letter = park(failed, failure_kind="error")
    with run_immediately():
        child = dispatch("diag.noop", {}, trigger_source="admin", parent=failed)
    response = admin_client.get(change_url(failed))
    assert response.status_code == 200
    html = response.content.decode()
    assert "event timeline" in html.lower()
    for event in ("created", "queued", "running", "failed"):
        assert f'<td class="field-type"><p>{event}</p></td>' in html or event in html
    assert "RuntimeError" in html and "Traceback" in html
    assert "boom &lt;b&gt;" in html  # escaped
    assert change_url(child) in html
    assert reverse("admin:dlq_deadletter_change", args=[letter.pk]) in html
    assert 'class="spine-badge spine-badge-failed"' in html
    # Read-only: no save buttons, no delete link, no editable inputs for ledger fields.
    assert 'name="_save"' not in html
    assert "deletelink" not in html
    assert 'name="status"' not in html
    assert reverse("admin:executions_execution_rerun", args=[failed.pk]) in html
    assert reverse("admin:executions_execution_cancel", args=[failed.pk]) not in html

    child_html = admin_client.get(change_url(child)).content.decode()
    assert change_url(failed) in child_html  # parent linked
    assert '{"ok": true}' in child_html or "&quot;ok&quot;: true" in child_html


def test_ledger_cannot_be_edited_added_or_deleted(
    admin_client: Client, stub: Any, run_immediately: Any
) -> None:
    execution = queued(run_immediately)
    assert admin_client.get(reverse("admin:executions_execution_add")).status_code == 403
    response = admin_client.post(change_url(execution), {"status": "succeeded"})
    assert response.status_code == 403
    delete = reverse("admin:executions_execution_delete", args=[execution.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.QUEUED


def test_cancel_action_confirms_then_cancels_only_live_executions(
    admin_client: Client, stub: Any, run_immediately: Any, settings: Any
) -> None:
    live = queued(run_immediately)
    settings.EXECUTION_BACKEND = "local"
    done = queued(run_immediately)
    assert done.status == ExecutionStatus.SUCCEEDED
    settings.EXECUTION_BACKEND = "stub"
    data = {
        "action": "cancel_selected",
        helpers.ACTION_CHECKBOX_NAME: [str(live.pk), str(done.pk)],
    }
    confirm = admin_client.post(reverse(CHANGELIST), data)
    assert confirm.status_code == 200
    html = confirm.content.decode()
    assert "Yes, cancel" in html and "already Succeeded" in html
    live.refresh_from_db()
    assert live.status == ExecutionStatus.QUEUED  # nothing happens before confirming

    with run_immediately():
        response = admin_client.post(
            reverse(CHANGELIST), {**data, "post": "yes", "reason": "operator test"}
        )
    assert response.status_code == 302
    live.refresh_from_db()
    done.refresh_from_db()
    assert live.status == ExecutionStatus.CANCELLED
    assert done.status == ExecutionStatus.SUCCEEDED
    cancelled = live.events.get(type="cancelled")
    assert cancelled.data["by"] == "root" and cancelled.data["reason"] == "operator test"


def test_cancel_from_the_detail_page(admin_client: Client, stub: Any, run_immediately: Any) -> None:
    execution = queued(run_immediately)
    url = reverse("admin:executions_execution_cancel", args=[execution.pk])
    page = admin_client.get(url)
    assert page.status_code == 200 and "Yes, cancel" in page.content.decode()
    with run_immediately():
        response = admin_client.post(url, {"post": "yes", "reason": ""})
    assert response.status_code == 302 and response["Location"] == change_url(execution)
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.CANCELLED


def test_rerun_creates_a_new_execution_through_the_dispatcher(
    admin_client: Client, local_backend: Any, run_immediately: Any
) -> None:
    with run_immediately():
        original = dispatch("diag.sleep", {"seconds": 0.01}, trigger_source="api")
    url = reverse("admin:executions_execution_rerun", args=[original.pk])
    assert "Yes, re-run" in admin_client.get(url).content.decode()
    with run_immediately():
        response = admin_client.post(url, {"post": "yes"})
    rerun = Execution.objects.exclude(pk=original.pk).get()
    assert response.status_code == 302 and response["Location"] == change_url(rerun)
    assert rerun.parent_id == original.pk
    assert rerun.trigger_source == TriggerSource.ADMIN
    assert rerun.params == original.params and rerun.lane == original.lane
    assert rerun.status == ExecutionStatus.SUCCEEDED
    assert rerun.events.filter(type="created").exists()


def test_bulk_rerun_reports_each_new_execution(
    admin_client: Client, local_backend: Any, run_immediately: Any
) -> None:
    first = queued(run_immediately)
    second = queued(run_immediately)
    data = {
        "action": "rerun_selected",
        helpers.ACTION_CHECKBOX_NAME: [str(first.pk), str(second.pk)],
        "post": "yes",
    }
    with run_immediately():
        response = admin_client.post(reverse(CHANGELIST), data, follow=True)
    assert "2 executions re-run" in response.content.decode()
    assert Execution.objects.filter(trigger_source="admin").count() == 2


def test_actions_respect_permissions(
    viewer_client: Client, stub: Any, run_immediately: Any
) -> None:
    execution = queued(run_immediately)
    html = viewer_client.get(reverse(CHANGELIST)).content.decode()
    assert "cancel_selected" not in html and "rerun_selected" not in html
    assert reverse(RUN) not in html
    detail = viewer_client.get(change_url(execution)).content.decode()
    assert "spine-cancel" not in detail and "spine-rerun" not in detail
    for name in ("cancel", "rerun"):
        url = reverse(f"admin:executions_execution_{name}", args=[execution.pk])
        assert viewer_client.get(url).status_code == 403
        assert viewer_client.post(url, {"post": "yes"}).status_code == 403
    data = {"action": "cancel_selected", helpers.ACTION_CHECKBOX_NAME: [str(execution.pk)]}
    viewer_client.post(reverse(CHANGELIST), {**data, "post": "yes"})
    assert viewer_client.get(reverse(RUN)).status_code == 403
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.QUEUED
    assert Execution.objects.count() == 1


def test_cancel_permission_alone_allows_cancel_not_rerun(stub: Any, run_immediately: Any) -> None:
    from tests.ops.conftest import make_user

    client = Client()
    client.force_login(
        make_user("canceller", "executions.view_execution", "executions.cancel_execution")
    )
    execution = queued(run_immediately)
    rerun = reverse("admin:executions_execution_rerun", args=[execution.pk])
    assert client.get(rerun).status_code == 403
    with run_immediately():
        client.post(
            reverse("admin:executions_execution_cancel", args=[execution.pk]), {"post": "yes"}
        )
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.CANCELLED


def test_run_pipeline_page_lists_pipelines_and_builds_a_form(admin_client: Client) -> None:
    listing = admin_client.get(reverse(RUN))
    assert listing.status_code == 200
    assert "diag.sleep" in listing.content.decode()
    form = admin_client.get(reverse(RUN), {"pipeline": "diag.sleep"})
    html = form.content.decode()
    assert 'name="params-seconds"' in html and 'name="params-lock"' in html
    assert 'name="run-lane"' in html
    assert "Runs with the same non-empty lock name never overlap." in html


def test_run_pipeline_dispatches_valid_input(
    admin_client: Client, local_backend: Any, run_immediately: Any
) -> None:
    with run_immediately():
        response = admin_client.post(
            reverse(RUN),
            {"pipeline": "diag.sleep", "params-seconds": "0.01", "params-lock": "", "run-lane": ""},
        )
    execution = Execution.objects.get()
    assert response.status_code == 302 and response["Location"] == change_url(execution)
    assert execution.trigger_source == TriggerSource.ADMIN
    assert execution.params == {"seconds": 0.01, "lock": "", "swallow": False}
    assert execution.status == ExecutionStatus.SUCCEEDED


def test_run_pipeline_shows_validation_errors_on_the_form(admin_client: Client) -> None:
    response = admin_client.post(
        reverse(RUN), {"pipeline": "diag.sleep", "params-seconds": "-5", "run-lane": ""}
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "Please correct the errors below." in html
    assert "greater than or equal to 0" in html  # the serializer's own message
    not_a_number = admin_client.post(
        reverse(RUN), {"pipeline": "diag.sleep", "params-seconds": "soon", "run-lane": ""}
    )
    assert "Enter a number." in not_a_number.content.decode()
    bad_lane = admin_client.post(reverse(RUN), {"pipeline": "diag.noop", "run-lane": "nowhere"})
    assert "Select a valid choice" in bad_lane.content.decode()
    assert Execution.objects.count() == 0


def test_run_pipeline_unknown_name_says_so(admin_client: Client) -> None:
    response = admin_client.get(reverse(RUN), {"pipeline": "no.such"}, follow=True)
    html = response.content.decode().lower()
    assert "unknown pipeline &#x27;no.such&#x27;; registered pipelines:" in html


def test_every_registered_pipeline_gets_a_form(admin_client: Client) -> None:
    from executions.selectors import pipeline_list

    for pipeline in pipeline_list():
        response = admin_client.get(reverse(RUN), {"pipeline": pipeline.name})
        assert response.status_code == 200, pipeline.name
        html = response.content.decode()
        for name in pipeline.params().fields:
            assert f'name="params-{name}"' in html, (pipeline.name, name)


def test_run_the_full_etl_from_the_admin(
    admin_client: Client, local_backend: Any, run_immediately: Any, tmp_path: Any
) -> None:
    from otc.models import Capture
    from otc.sample.generator import generate_week

    path = tmp_path / "week.psv"
    generate_week(path, tier="T1", week=date(2025, 10, 8), rows=200, seed=5, ats=False)
    form = {
        "pipeline": "otc.full_etl",
        "params-path": path.name,
        "params-tier": "T1",
        "params-week": "2025-10-08",
        "params-ats": "false",
        "run-lane": "",
    }
    # Which summary the file is has no default: nothing preselected, a run without it
    # is refused on the page with the params' own message.
    page = admin_client.get(reverse(RUN), {"pipeline": "otc.full_etl"}).content.decode()
    choice = page[
        page.index('name="params-ats"') : page.index("</select>", page.index('name="params-ats"'))
    ]
    assert (
        'value="true"' in choice
        and 'value="false"' in choice
        and "selected" not in choice.replace('<option value="" selected>', "")
    )
    for unanswered in ({}, {"params-ats": ""}):
        missing = {**{k: v for k, v in form.items() if k != "params-ats"}, **unanswered}
        refused = admin_client.post(reverse(RUN), missing)
        assert refused.status_code == 200
        assert "say which FINRA summary the file is" in refused.content.decode()
    assert not Execution.objects.exists() and not Capture.objects.exists()
    with run_immediately():
        response = admin_client.post(reverse(RUN), form)
    execution = Execution.objects.get()
    assert response.status_code == 302, response.content.decode()[:2000]
    assert execution.status == ExecutionStatus.SUCCEEDED, execution.error
    assert execution.params == {
        "path": "week.psv",
        "tier": "T1",
        "week": "2025-10-06",
        "ats": False,
    }
    assert Capture.objects.get().week.isoformat() == "2025-10-06"
    bad = admin_client.post(reverse(RUN), {**form, "params-tier": "T4"})
    assert "unknown tier" in bad.content.decode()
    # The generic form takes inbox paths only, by the same params rules as the API.
    for outside in (str(path), "/etc/passwd", "../week.psv"):
        refused = admin_client.post(reverse(RUN), {**form, "params-path": outside})
        assert refused.status_code == 200 and "errorlist" in refused.content.decode()
    assert Execution.objects.count() == 1
