"""The dead-letter endpoints: list, retrieve, replay, resolve, discard, over HTTP."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from dlq.models import DeadLetter, Resolution
from executions.models import Execution, TriggerSource
from tests.dlq.dlq_support import make_user

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]

BASE = "/api/v1/dlq/"


@pytest.fixture(autouse=True)
def _ratelimit_namespace(settings: Any) -> None:
    """Count this test's requests under keys of its own (never flush a shared Redis)."""
    settings.RATELIMIT_CACHE_PREFIX = f"rl:test:{uuid.uuid4().hex}:"


def client_for(user: User | None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def body(response: Any) -> Any:
    return json.loads(response.content)


def error_code(response: Any) -> str:
    return body(response)["error"]["code"]


def test_reads_need_the_view_permission(run_failure):
    _, letter = run_failure()
    assert client_for(None).get(BASE).status_code == 401
    nobody = make_user("api-nobody", staff=False)
    denied = client_for(nobody).get(f"{BASE}{letter.pk}/")
    assert denied.status_code == 403 and error_code(denied) == "permission_denied"
    assert "dlq.view_deadletter" in body(denied)["error"]["message"]


def test_list_filters_and_search(run_failure, flaky_pipeline, viewer: User):
    failed, letter = run_failure()
    _, flaky_letter = run_failure("dlq_test.flaky", {"tier": "T2"})
    client = client_for(viewer)

    listed = body(client.get(BASE))
    assert listed["count"] == 2
    assert {r["id"] for r in listed["results"]} == {letter.pk, flaky_letter.pk}
    row = next(r for r in listed["results"] if r["id"] == letter.pk)
    assert row["state"] == "open" and row["failure_kind"] == "error"
    assert row["execution"] == str(failed.pk)
    assert row["execution_url"].endswith(f"/api/v1/executions/{failed.pk}/")
    assert "traceback" not in row

    only = body(client.get(BASE, {"pipeline": "dlq_test.flaky"}))
    assert [r["id"] for r in only["results"]] == [flaky_letter.pk]
    by_id = body(client.get(BASE, {"search": str(failed.pk)}))
    assert [r["id"] for r in by_id["results"]] == [letter.pk]
    by_fragment = body(client.get(BASE, {"search": str(failed.pk)[:8]}))
    assert [r["id"] for r in by_fragment["results"]] == [letter.pk]
    by_error = body(client.get(BASE, {"search": "refused tier"}))
    assert [r["id"] for r in by_error["results"]] == [flaky_letter.pk]
    assert body(client.get(BASE, {"state": "resolved"}))["count"] == 0

    bad = client.get(BASE, {"failure_kind": "meltdown"})
    assert bad.status_code == 400 and error_code(bad) == "validation_error"
    assert "failure_kind" in body(bad)["error"]["details"]
    bad_sort = client.get(BASE, {"ordering": "secret"})
    assert bad_sort.status_code == 400


def test_retrieve_has_params_and_traceback(run_failure, viewer: User):
    _, letter = run_failure("diag.fail", {"message": "disk full"})
    data = body(client_for(viewer).get(f"{BASE}{letter.pk}/"))
    assert data["params"] == {"message": "disk full"}
    assert "RuntimeError: disk full" in data["traceback"]
    assert data["error"] == "RuntimeError: disk full"
    missing = client_for(viewer).get(f"{BASE}999999/")
    assert missing.status_code == 404 and error_code(missing) == "not_found"


def test_replay_needs_the_replay_permission(run_failure, viewer: User):
    _, letter = run_failure()
    response = client_for(viewer).post(f"{BASE}{letter.pk}/replay/", {}, format="json")
    assert response.status_code == 403
    assert "dlq.replay_deadletter" in body(response)["error"]["message"]
    letter.refresh_from_db()
    assert letter.is_open


def test_replay_creates_a_new_execution_then_refuses_a_second_time(
    run_failure, operator: User, django_capture_on_commit_callbacks
):
    failed, letter = run_failure()
    client = client_for(operator)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"{BASE}{letter.pk}/replay/", {}, format="json")
    assert response.status_code == 202, body(response)
    data = body(response)
    replay = Execution.objects.get(pk=data["replay_execution"])
    assert replay.parent_id == failed.pk and replay.trigger_source == TriggerSource.RETRY
    assert response["Location"].endswith(f"/api/v1/executions/{replay.pk}/")
    assert data["resolution"] == Resolution.REPLAYED and data["state"] == "resolved"
    assert data["resolved_by"] == operator.username

    again = client.post(f"{BASE}{letter.pk}/replay/", {}, format="json")
    assert again.status_code == 409 and error_code(again) == "dead_letter_already_resolved"
    assert body(again)["error"]["details"] == {"dead_letter_id": letter.pk}


def test_replay_over_budget_is_409_unless_forced(
    run_failure, operator: User, django_capture_on_commit_callbacks
):
    _, first = run_failure()
    client = client_for(operator)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"{BASE}{first.pk}/replay/", {}, format="json")
    second = DeadLetter.objects.get(previous=first)
    refused = client.post(f"{BASE}{second.pk}/replay/", {}, format="json")
    assert refused.status_code == 409 and error_code(refused) == "dead_letter_retries_exhausted"
    forced = client.post(f"{BASE}{second.pk}/replay/", {"force": True}, format="json")
    assert forced.status_code == 202


def test_resolve_needs_a_note_and_discard_does_not(run_failure, flaky_pipeline, operator):
    _, letter = run_failure()
    _, other = run_failure("dlq_test.flaky", {})
    client = client_for(operator)

    no_note = client.post(f"{BASE}{letter.pk}/resolve/", {}, format="json")
    assert no_note.status_code == 400 and "note" in body(no_note)["error"]["details"]
    resolved = client.post(f"{BASE}{letter.pk}/resolve/", {"note": "fixed by hand"}, format="json")
    assert resolved.status_code == 200
    assert body(resolved)["resolution"] == "resolved" and body(resolved)["note"] == "fixed by hand"

    discarded = client.post(f"{BASE}{other.pk}/discard/", {}, format="json")
    assert discarded.status_code == 200 and body(discarded)["resolution"] == "discarded"
    twice = client.post(f"{BASE}{other.pk}/discard/", {}, format="json")
    assert twice.status_code == 409
