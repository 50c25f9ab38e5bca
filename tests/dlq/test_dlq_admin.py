"""The dead-letter admin: list, detail, and replay / resolve / discard with confirmation.

Driven through Django's test client as staff users with and without the permissions.
"""

from __future__ import annotations

import re
from datetime import UTC
from html import unescape
from typing import Any

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from dlq.models import DeadLetter, Resolution
from executions.models import Execution, TriggerSource
from spine import admin as spine_admin
from spine.time import format_iso
from tests.dlq.dlq_support import make_user

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]

CHANGELIST = "admin:dlq_deadletter_changelist"


def login(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def change_url(letter: DeadLetter) -> str:
    return reverse("admin:dlq_deadletter_change", args=[letter.pk])


def html(response: Any) -> str:
    return response.content.decode()


def offered_actions(client: Client, url: str) -> set[str]:
    form = client.get(url).context["action_form"]
    return set() if form is None else {name for name, _ in form.fields["action"].choices}


def test_changelist_lists_filters_and_searches(run_failure, flaky_pipeline, viewer: User):
    failed, letter = run_failure("diag.fail", {"message": "vendor feed timed out"})
    _, flaky_letter = run_failure("dlq_test.flaky", {"tier": "OTC"})
    client = login(viewer)
    url = reverse(CHANGELIST)

    page = client.get(url)
    assert page.status_code == 200
    assert page.context["cl"].result_count == 2
    assert "RuntimeError: vendor feed timed out" in html(page)

    def ids(params: dict[str, str]) -> set[int]:
        response = client.get(url, params)
        assert response.status_code == 200
        return {x.pk for x in response.context["cl"].result_list}

    assert ids({"pipeline": "dlq_test.flaky"}) == {flaky_letter.pk}
    assert ids({"failure_kind__exact": "error"}) == {letter.pk, flaky_letter.pk}
    assert ids({"state": "open"}) == {letter.pk, flaky_letter.pk}
    assert ids({"state": "resolved"}) == set()
    assert ids({"age": "1h"}) == {letter.pk, flaky_letter.pk}
    assert ids({"age": "gt7d"}) == set()
    assert ids({"q": str(failed.pk)}) == {letter.pk}
    assert ids({"q": str(failed.pk).split("-")[0]}) == {letter.pk}
    assert ids({"q": "refused tier OTC"}) == {flaky_letter.pk}
    assert ids({"q": str(letter.pk)}) >= {letter.pk}


def test_detail_shows_traceback_params_timeline_and_links(run_failure, viewer: User):
    failed, letter = run_failure("diag.fail", {"message": "bad <html> & quotes"})
    page = login(viewer).get(change_url(letter))
    assert page.status_code == 200
    body = html(page)
    assert 'id="dlq-traceback"' in body and "Traceback (most recent call last)" in body
    assert "raise RuntimeError(ctx.params[&quot;message&quot;])" in body
    assert "bad &lt;html&gt; &amp; quotes" in body  # escaped, never rendered
    assert "&quot;message&quot;: &quot;bad &lt;html&gt; &amp; quotes&quot;" in body  # pretty JSON
    for event in ("created", "queued", "started", "failed", "dead_lettered"):
        assert f"<td>{event}</td>" in body
    assert str(failed.pk) in body
    # Read-only: no save buttons, no editable inputs.
    assert 'name="_save"' not in body
    # A viewer sees no action buttons.
    assert "dlq-replay" not in body and "dlq-resolve" not in body


def test_detail_links_the_replay_and_the_lineage(
    run_failure, operator: User, django_capture_on_commit_callbacks
):
    from dlq import services

    failed, first = run_failure()
    with django_capture_on_commit_callbacks(execute=True):
        replay = services.retry(first, by=operator)
    second = DeadLetter.objects.get(execution=replay)

    body = html(login(operator).get(change_url(second)))
    assert 'id="dlq-lineage"' in body
    assert f'href="{change_url(first)}"' in body  # previous letter
    assert str(failed.pk) in body  # the parent execution
    body_first = html(login(operator).get(change_url(first)))
    assert "replayed" in body_first and str(replay.pk) in body_first
    assert "child (replay)" in body_first


def test_execution_links_use_the_execution_admin_when_there_is_one(monkeypatch):
    monkeypatch.setattr(spine_admin, "execution_admin_url", lambda pk: f"/admin/x/{pk}/")
    assert 'href="/admin/x/abc/"' in str(spine_admin.execution_link("abc"))
    monkeypatch.setattr(spine_admin, "execution_admin_url", lambda pk: None)
    assert str(spine_admin.execution_link("abc")) == "<code>abc</code>"


def test_operator_sees_action_buttons_and_viewer_does_not_see_replay(
    run_failure, viewer: User, operator: User
):
    _, letter = run_failure()
    url = reverse(CHANGELIST)
    viewer_actions = offered_actions(login(viewer), url)
    operator_actions = offered_actions(login(operator), url)
    assert "replay_selected" not in viewer_actions
    assert "resolve_selected" not in viewer_actions
    assert {"replay_selected", "resolve_selected", "discard_selected"} <= operator_actions
    assert "delete_selected" not in operator_actions
    assert "dlq-replay" in html(login(operator).get(change_url(letter)))


def test_bulk_replay_confirms_then_runs(
    run_failure, flaky_pipeline, operator: User, django_capture_on_commit_callbacks
):
    failed_a, a = run_failure()
    failed_b, b = run_failure("dlq_test.flaky", {"tier": "T2"})
    client = login(operator)
    url = reverse(CHANGELIST)

    confirm = client.post(url, {"action": "replay_selected", ACTION_CHECKBOX_NAME: [a.pk, b.pk]})
    assert confirm.status_code == 200
    body = html(confirm)
    assert "Yes, replay" in body
    assert 'id="dlq-plan"' in body and "dlq_test.flaky" in body and "diag.fail" in body
    assert "runs as attempt 2" in body
    assert Execution.objects.filter(trigger_source=TriggerSource.RETRY).count() == 0

    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(
            url,
            {"action": "replay_selected", ACTION_CHECKBOX_NAME: [a.pk, b.pk], "post": "yes"},
            follow=True,
        )
    assert done.status_code == 200
    assert "2 dead letters replayed" in html(done)
    for letter, failed in ((a, failed_a), (b, failed_b)):
        letter.refresh_from_db()
        assert letter.resolution == Resolution.REPLAYED and letter.resolved_by == operator
        assert letter.replay_execution.parent_id == failed.pk


def test_bulk_replay_is_refused_without_the_permission(run_failure, viewer: User):
    _, letter = run_failure()
    client = login(viewer)
    response = client.post(
        reverse(CHANGELIST),
        {"action": "replay_selected", ACTION_CHECKBOX_NAME: [letter.pk], "post": "yes"},
    )
    # Django refuses an action the user may not see: nothing runs.
    assert response.status_code in (200, 302)
    letter.refresh_from_db()
    assert letter.is_open
    assert not Execution.objects.filter(parent=letter.execution).exists()
    assert client.get(reverse("admin:dlq_deadletter_replay", args=[letter.pk])).status_code == 403


def test_replay_with_only_the_replay_permission(run_failure, django_capture_on_commit_callbacks):
    """The replay permission alone is enough to see dead letters and replay them."""
    replayer = make_user("replayer", "dlq.replay_deadletter")
    _, letter = run_failure()
    client = login(replayer)
    assert client.get(reverse(CHANGELIST)).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(
            reverse("admin:dlq_deadletter_replay", args=[letter.pk]), {"post": "yes"}
        )
    assert done.status_code == 302 and done["Location"] == change_url(letter)
    letter.refresh_from_db()
    assert letter.resolution == Resolution.REPLAYED
    # Resolve and discard need the change permission.
    assert client.get(reverse("admin:dlq_deadletter_resolve", args=[letter.pk])).status_code == 403


def test_bulk_replay_of_mixed_letters_reports_each_outcome(
    run_failure, operator: User, django_capture_on_commit_callbacks
):
    from dlq import services

    _, closed = run_failure()
    services.discard(closed, by=operator)
    _, first = run_failure()
    with django_capture_on_commit_callbacks(execute=True):
        services.retry(first, by=operator)
    over = DeadLetter.objects.get(previous=first)  # over its budget: needs force
    client = login(operator)
    url = reverse(CHANGELIST)
    ids = [closed.pk, over.pk]

    confirm = html(client.post(url, {"action": "replay_selected", ACTION_CHECKBOX_NAME: ids}))
    assert "already discarded" in confirm
    assert "runs only if forced" in confirm
    assert 'name="force"' in confirm

    done = client.post(
        url, {"action": "replay_selected", ACTION_CHECKBOX_NAME: ids, "post": "yes"}, follow=True
    )
    text = html(done)
    assert "is already discarded" in text and "over its retry budget" in text
    over.refresh_from_db()
    assert over.is_open

    with django_capture_on_commit_callbacks(execute=True):
        forced = client.post(
            url,
            {
                "action": "replay_selected",
                ACTION_CHECKBOX_NAME: [over.pk],
                "post": "yes",
                "force": "on",
            },
            follow=True,
        )
    assert "1 dead letter replayed" in html(forced)
    over.refresh_from_db()
    assert over.resolution == Resolution.REPLAYED


def test_resolve_from_the_detail_page_needs_a_note(run_failure, operator: User):
    _, letter = run_failure()
    client = login(operator)
    url = reverse("admin:dlq_deadletter_resolve", args=[letter.pk])

    page = client.get(url)
    assert page.status_code == 200 and "Yes, resolve" in html(page)
    missing = client.post(url, {"post": "yes", "note": ""})
    assert missing.status_code == 200 and "This field is required" in html(missing)
    letter.refresh_from_db()
    assert letter.is_open

    done = client.post(url, {"post": "yes", "note": "re-ran the ingest by hand"})
    assert done.status_code == 302
    letter.refresh_from_db()
    assert letter.resolution == Resolution.RESOLVED and letter.note == "re-ran the ingest by hand"


def test_bulk_discard(run_failure, operator: User):
    _, a = run_failure()
    _, b = run_failure()
    client = login(operator)
    url = reverse(CHANGELIST)
    ids = [a.pk, b.pk]
    confirm = client.post(url, {"action": "discard_selected", ACTION_CHECKBOX_NAME: ids})
    assert "Yes, discard" in html(confirm)
    client.post(
        url,
        {"action": "discard_selected", ACTION_CHECKBOX_NAME: ids, "post": "yes", "note": "dupes"},
    )
    assert set(DeadLetter.objects.filter(pk__in=ids).values_list("resolution", flat=True)) == {
        Resolution.DISCARDED
    }


def test_letters_cannot_be_added_edited_or_deleted_by_hand(run_failure, operator: User):
    _, letter = run_failure()
    client = login(operator)
    assert client.get(reverse("admin:dlq_deadletter_add")).status_code == 403
    assert client.get(reverse("admin:dlq_deadletter_delete", args=[letter.pk])).status_code == 403
    # Posting to the (view-only) change page changes nothing.
    response = client.post(change_url(letter), {"note": "tampered", "resolution": "resolved"})
    assert response.status_code == 403
    letter.refresh_from_db()
    assert letter.is_open and letter.note == ""


def test_letter_times_show_seconds_and_zone_with_iso_tooltips(run_failure, viewer: User):
    _, letter = run_failure("diag.fail", {"message": "late file"})
    client = login(viewer)
    shown = letter.created_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    tooltip = f'title="{format_iso(letter.created_at)}">{shown}</time>'
    assert tooltip in html(client.get(reverse(CHANGELIST)))
    assert tooltip in html(client.get(change_url(letter)))


def crumbs(page: str) -> str:
    match = re.search(r'<div class="breadcrumbs">(.*?)</div>', page, re.S)
    assert match
    return " ".join(unescape(re.sub(r"<[^>]+>", "", match.group(1))).split())


def test_breadcrumbs_name_the_app_once(run_failure, operator: User):
    _, letter = run_failure()
    client = login(operator)
    assert crumbs(html(client.get(reverse(CHANGELIST)))) == "Home › Dead letters"
    assert crumbs(html(client.get(change_url(letter)))).startswith("Home › Dead letters › ")
    groups = reverse("admin:dlq_deadletter_groups")
    assert crumbs(html(client.get(groups))) == "Home › Dead letters › Groups"
    replay = reverse("admin:dlq_deadletter_group_replay", args=[letter.signature])
    replay_crumbs = crumbs(html(client.get(replay)))
    assert replay_crumbs.startswith("Home › Dead letters › Groups › Replay group")


def test_group_page_buttons_and_plan_read_well(run_failure, operator: User, settings: Any):
    settings.SPINE_REPLAY_RATE = 10
    _, a = run_failure("diag.fail", {"message": "row 1 bad"})
    run_failure("diag.fail", {"message": "row 2 bad"})
    client = login(operator)
    groups = html(client.get(reverse("admin:dlq_deadletter_groups")))
    assert re.search(r'<td class="dlq-actions">\s*<a class="button dlq-group-replay"', groups)
    url = reverse("admin:dlq_deadletter_group_replay", args=[a.signature])
    plan = html(client.get(url))
    assert "about 6.00 s." in plan and "minutes" not in plan  # two letters, 10 a minute
    execution = reverse("admin:executions_execution_change", args=[a.execution_id])
    assert f'<a href="{execution}"><code>{a.execution_id}</code></a>' in plan
    assert 'class="button cancel-link"' in plan
