"""The dead-letter console in the admin: groups, filters, group replay at the rate cap
with its progress page, paced replay of a selection, group discard, edit and replay."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from dlq import services
from dlq.models import DeadLetter, Resolution
from executions.dispatcher import dispatch
from executions.models import Execution, ExecutionStatus
from tests.dlq.dlq_support import make_user

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]

CHANGELIST = "admin:dlq_deadletter_changelist"
GROUPS = "admin:dlq_deadletter_groups"


@pytest.fixture(autouse=True)
def _fast_rate(settings: Any) -> None:
    settings.SPINE_REPLAY_RATE = 6000


def login(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def html(response: Any) -> str:
    return response.content.decode()


def test_groups_page_lists_groups_and_links_them(run_failure, viewer: User):
    _, a = run_failure("diag.fail", {"message": "row 1 bad"})
    _, b = run_failure("diag.fail", {"message": "row 2 bad"})
    run_failure("diag.fail", {"message": "other"})
    client = login(viewer)

    changelist = html(client.get(reverse(CHANGELIST)))
    assert reverse(GROUPS) in changelist  # "Groups" from the list

    page = client.get(reverse(GROUPS))
    assert page.status_code == 200
    text = html(page)
    assert 'id="dlq-groups"' in text and a.signature in text
    assert "RuntimeError: row 2 bad" in text  # the example: the newest letter
    assert f"state=open&amp;signature={a.signature}" in text
    rows = page.context["rows"]
    assert [r["count"] for r in rows] == [2, 1]
    assert "dlq-group-replay" not in text and "dlq-group-discard" not in text  # viewers only look
    assert client.get(reverse(GROUPS), {"pipeline": "nope"}).context["rows"] == []

    filtered = client.get(reverse(CHANGELIST), {"signature": a.signature})
    assert {x.pk for x in filtered.context["cl"].result_list} == {a.pk, b.pk}
    by_class = client.get(reverse(CHANGELIST), {"error_class": "RuntimeError"})
    assert by_class.context["cl"].result_count == 3
    assert (
        client.get(reverse(CHANGELIST), {"error_class": "KeyError"}).context["cl"].result_count == 0
    )
    dated = client.get(reverse(CHANGELIST), {"created_at__gte": "2000-01-01 00:00:00+00:00"})
    assert dated.context["cl"].result_count == 3


def test_groups_need_the_view_permission(run_failure):
    run_failure()
    nobody = make_user("nobody-staff")
    assert login(nobody).get(reverse(GROUPS)).status_code == 403


def test_replay_group_confirms_then_runs_a_batch_with_progress(
    run_failure, operator: User, django_capture_on_commit_callbacks
):
    _, a = run_failure("diag.fail", {"message": "row 1 bad"})
    _, b = run_failure("diag.fail", {"message": "row 2 bad"})
    _, other = run_failure("diag.fail", {"message": "other"})
    client = login(operator)
    assert "Replay group" in html(client.get(reverse(GROUPS)))
    url = reverse("admin:dlq_deadletter_group_replay", args=[a.signature])

    confirm = client.get(url)
    assert confirm.status_code == 200
    text = html(confirm)
    assert "Yes, replay group" in text and "at most" in text and "6000" in text
    assert f"#{a.pk}" in text and f"#{b.pk}" in text
    assert not Execution.objects.filter(pipeline="dlq.replay_batch").exists()

    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(url, {"post": "yes"})
    batch = Execution.objects.get(pipeline="dlq.replay_batch")
    assert done.status_code == 302
    assert done["Location"] == reverse("admin:dlq_deadletter_batch", args=[batch.pk])
    batch.refresh_from_db()
    assert batch.status == ExecutionStatus.SUCCEEDED and batch.params["ids"] == [a.pk, b.pk]

    progress = client.get(done["Location"])
    text = html(progress)
    assert progress.status_code == 200 and 'id="dlq-batch-progress"' in text
    assert "<strong>2</strong> of <strong>2</strong> done" in text
    assert 'http-equiv="refresh"' not in text  # finished: no more reloading
    for letter in (a, b):
        letter.refresh_from_db()
        assert letter.resolution == Resolution.REPLAYED
        assert str(letter.replay_execution_id) in text
    other.refresh_from_db()
    assert other.is_open
    assert str(batch.pk)[:8] in html(client.get(reverse(GROUPS)))  # recent batches


def test_a_running_batch_page_refreshes(operator: User, stub_backend):
    failed = dispatch("diag.fail", {"message": "m"}, trigger_source="cli")
    letter = services.park(failed, failure_kind="error")
    batch = services.submit_replay_batch([letter], by=operator, trigger_source="admin")
    page = html(login(operator).get(reverse("admin:dlq_deadletter_batch", args=[batch.pk])))
    assert 'http-equiv="refresh"' in page and "<strong>0</strong> of <strong>1</strong>" in page


def test_group_pages_refuse_without_permission_or_with_a_bad_signature(
    run_failure, viewer: User, operator: User
):
    _, letter = run_failure()
    url = reverse("admin:dlq_deadletter_group_replay", args=[letter.signature])
    assert login(viewer).get(url).status_code == 403
    assert login(viewer).post(url, {"post": "yes"}).status_code == 403
    discard_url = reverse("admin:dlq_deadletter_group_discard", args=[letter.signature])
    assert login(viewer).get(discard_url).status_code == 403
    bad = reverse("admin:dlq_deadletter_group_replay", args=["nonsense"])
    assert login(operator).get(bad).status_code == 404
    assert not Execution.objects.filter(pipeline="dlq.replay_batch").exists()


def test_discard_group_needs_a_reason(run_failure, operator: User):
    _, a = run_failure("diag.fail", {"message": "row 1 bad"})
    _, b = run_failure("diag.fail", {"message": "row 2 bad"})
    client = login(operator)
    url = reverse("admin:dlq_deadletter_group_discard", args=[a.signature])
    missing = client.post(url, {"post": "yes", "note": ""})
    assert missing.status_code == 200 and "This field is required" in html(missing)
    assert DeadLetter.objects.open().count() == 2
    done = client.post(url, {"post": "yes", "note": "feed replayed upstream"})
    assert done.status_code == 302 and done["Location"] == reverse(GROUPS)
    for letter in (a, b):
        letter.refresh_from_db()
        assert letter.resolution == Resolution.DISCARDED
        assert letter.note == "feed replayed upstream"


def test_paced_replay_of_a_selection(
    run_failure, operator: User, viewer: User, django_capture_on_commit_callbacks
):
    _, a = run_failure()
    _, b = run_failure()
    client = login(operator)
    url = reverse(CHANGELIST)
    action = {"action": "replay_paced_selected", ACTION_CHECKBOX_NAME: [a.pk, b.pk]}
    confirm = client.post(url, action)
    assert confirm.status_code == 200 and "Yes, replay at the rate cap" in html(confirm)
    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(url, {**action, "post": "yes"})
    batch = Execution.objects.get(pipeline="dlq.replay_batch")
    assert done.status_code == 302 and str(batch.pk) in done["Location"]
    assert batch.params["ids"] == [a.pk, b.pk] and batch.params["requested_by"] == operator.username
    refused = login(viewer).post(url, {**action, "post": "yes"})
    assert refused.status_code in (200, 302)
    assert Execution.objects.filter(pipeline="dlq.replay_batch").count() == 1


def test_bulk_discard_from_the_list_needs_a_reason(run_failure, operator: User):
    _, a = run_failure()
    client = login(operator)
    url = reverse(CHANGELIST)
    posted = client.post(
        url, {"action": "discard_selected", ACTION_CHECKBOX_NAME: [a.pk], "post": "yes", "note": ""}
    )
    assert posted.status_code == 200 and "This field is required" in html(posted)
    a.refresh_from_db()
    assert a.is_open


def test_edit_and_replay_shows_the_diff_then_replays(
    run_failure, flaky_pipeline, operator: User, django_capture_on_commit_callbacks
):
    _, letter = run_failure("dlq_test.flaky", {"tier": "T2"})
    client = login(operator)
    change = html(client.get(reverse("admin:dlq_deadletter_change", args=[letter.pk])))
    url = reverse("admin:dlq_deadletter_edit_replay", args=[letter.pk])
    assert url in change

    form_page = client.get(url)
    assert form_page.status_code == 200
    form = form_page.context["form"]
    assert form["tier"].value() == "T2"  # prefilled from the letter

    bad = client.post(url, {"params-tier": "T9"})
    assert bad.status_code == 200 and bad.context["form"].errors
    letter.refresh_from_db()
    assert letter.is_open and letter.params_changes == []

    confirm = client.post(url, {"params-tier": "OTC", "params-week": "2025-10-06"})
    text = html(confirm)
    assert confirm.status_code == 200 and 'id="dlq-diff"' in text
    assert confirm.context["diff"] == [
        {"key": "tier", "old": '"T2"', "new": '"OTC"'},
        {"key": "week", "old": "null", "new": '"2025-10-06"'},
    ]
    letter.refresh_from_db()
    assert letter.is_open  # nothing runs before the confirmation

    params_json = confirm.context["confirm"].initial["params_json"]
    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(url, {"post": "yes", "params_json": params_json})
    assert done.status_code == 302
    letter.refresh_from_db()
    assert letter.resolution == Resolution.REPLAYED
    assert letter.replay_execution.params == {"tier": "OTC", "week": "2025-10-06"}
    assert letter.original_params == {"tier": "T2"}
    assert letter.params_changes[0]["by"] == operator.username
    page = html(client.get(reverse("admin:dlq_deadletter_change", args=[letter.pk])))
    assert 'id="dlq-params-changes"' in page and operator.username in page


def test_edit_and_replay_refuses_tampered_params_and_viewers(
    run_failure, flaky_pipeline, operator: User, viewer: User
):
    _, letter = run_failure("dlq_test.flaky", {"tier": "T2"})
    url = reverse("admin:dlq_deadletter_edit_replay", args=[letter.pk])
    assert login(viewer).get(url).status_code == 403
    client = login(operator)
    tampered = client.post(url, {"post": "yes", "params_json": '{"tier": "T9"}'}, follow=True)
    assert any("invalid params" in str(m) for m in tampered.context["messages"])
    not_json = client.post(url, {"post": "yes", "params_json": "nope"})
    assert not_json.status_code == 200 and "not valid JSON" in html(not_json)
    letter.refresh_from_db()
    assert letter.is_open and letter.params == {"tier": "T2"}
    assert not Execution.objects.filter(parent=letter.execution).exists()


def test_immediate_replay_is_for_at_most_a_minutes_budget(
    run_failure, operator: User, settings: Any
):
    settings.SPINE_REPLAY_RATE = 1
    _, a = run_failure()
    _, b = run_failure()
    response = login(operator).post(
        reverse(CHANGELIST),
        {"action": "replay_selected", ACTION_CHECKBOX_NAME: [a.pk, b.pk], "post": "yes"},
        follow=True,
    )
    assert any("at the rate cap" in str(m) for m in response.context["messages"])
    assert DeadLetter.objects.open().count() == 2
