"""The dead-letter console over HTTP: groups, bulk replay at the rate cap, bulk discard
with a reason, edit-and-replay; permissions and bad input (400, nothing written)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from dlq import services
from dlq.models import DeadLetter, Resolution
from executions.models import Execution, ExecutionStatus
from tests.dlq.dlq_support import make_user

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]

BASE = "/api/v1/dlq/"


@pytest.fixture(autouse=True)
def _ratelimit_namespace(settings: Any) -> None:
    settings.RATELIMIT_CACHE_PREFIX = f"rl:test:{uuid.uuid4().hex}:"
    settings.SPINE_REPLAY_RATE = 6000  # 10 ms apart: the inline batch finishes at once


def client_for(user: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def body(response: Any) -> Any:
    return json.loads(response.content)


def test_groups_list_paginated_with_filters(run_failure, flaky_pipeline, viewer: User):
    _, a = run_failure("diag.fail", {"message": "row 1 bad"})
    _, b = run_failure("diag.fail", {"message": "row 2 bad"})
    _, f = run_failure("dlq_test.flaky", {"tier": "T2"})
    client = client_for(viewer)

    page = body(client.get(f"{BASE}groups/"))
    assert page["count"] == 2
    first = page["results"][0]
    assert first["signature"] == a.signature and first["count"] == 2
    assert first["pipeline"] == "diag.fail" and first["error_class"] == "RuntimeError"
    assert first["example"].endswith(f"/api/v1/dlq/{b.pk}/")
    assert first["example_error"] == "RuntimeError: row 2 bad"
    assert first["letters_url"].endswith(f"?state=open&signature={a.signature}")
    assert set(first) >= {"first_seen", "last_seen", "failure_kind"}

    only = body(client.get(f"{BASE}groups/", {"pipeline": "dlq_test.flaky"}))
    assert [r["signature"] for r in only["results"]] == [f.signature]
    assert body(client.get(f"{BASE}groups/", {"error_class": "Nope"}))["count"] == 0
    assert client.get(f"{BASE}groups/", {"failure_kind": "meltdown"}).status_code == 400
    assert client.get(f"{BASE}groups/", {"page": "9"}).status_code == 404
    small = body(client.get(f"{BASE}groups/", {"page_size": "1"}))
    assert small["count"] == 2 and len(small["results"]) == 1

    listed = body(client.get(BASE, {"signature": a.signature}))
    assert {r["id"] for r in listed["results"]} == {a.pk, b.pk}
    assert listed["results"][0]["signature"] == a.signature


def test_groups_need_the_view_permission(run_failure):
    run_failure()
    nobody = make_user("groups-nobody")
    assert client_for(nobody).get(f"{BASE}groups/").status_code == 403


def test_bulk_replay_by_signature_answers_202_with_the_batch(
    run_failure, operator: User, django_capture_on_commit_callbacks
):
    _, a = run_failure("diag.fail", {"message": "row 1 bad"})
    _, b = run_failure("diag.fail", {"message": "row 2 bad"})
    _, other = run_failure("diag.fail", {"message": "different"})
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(operator).post(
            f"{BASE}groups/{a.signature}/replay/", {}, format="json"
        )
    assert response.status_code == 202, response.content
    batch = body(response)
    assert batch["pipeline"] == "dlq.replay_batch"
    assert response["Location"].endswith(f"/api/v1/executions/{batch['id']}/")
    execution = Execution.objects.get(pk=batch["id"])
    assert execution.params["ids"] == [a.pk, b.pk]
    assert execution.params["signature"] == a.signature
    assert execution.status == ExecutionStatus.SUCCEEDED
    assert execution.result["replayed"] == 2
    for letter in (a, b):
        letter.refresh_from_db()
        assert letter.resolution == Resolution.REPLAYED and letter.resolved_by == operator
    other.refresh_from_db()
    assert other.is_open


def test_bulk_replay_by_ids_and_its_refusals(run_failure, operator: User, viewer: User):
    _, a = run_failure()
    _, b = run_failure()
    client = client_for(operator)
    before = Execution.objects.count()
    cases = [
        ("replay/", {"ids": [a.pk, 999_999]}, 404, "not_found"),
        ("replay/", {}, 400, "validation_error"),
        ("replay/", {"ids": []}, 400, "validation_error"),
        ("replay/", {"ids": "1"}, 400, "validation_error"),
        ("replay/", {"ids": [a.pk], "force": "yes"}, 400, "validation_error"),
        (f"groups/{'0' * 16}/replay/", {}, 404, "not_found"),
        ("groups/NOT-A-SIG/replay/", {}, 404, "not_found"),
    ]
    for path, payload, status, code in cases:
        response = client.post(f"{BASE}{path}", payload, format="json")
        assert response.status_code == status, (payload, response.content)
        assert body(response)["error"]["code"] == code
    assert Execution.objects.count() == before
    assert (
        client_for(viewer).post(f"{BASE}replay/", {"ids": [a.pk]}, format="json").status_code == 403
    )

    services.discard(a, by=operator, note="x")
    services.discard(b, by=operator, note="x")
    closed = client.post(f"{BASE}replay/", {"ids": [a.pk, b.pk]}, format="json")
    assert closed.status_code == 409
    assert body(closed)["error"]["code"] == "dead_letter_nothing_to_replay"
    assert Execution.objects.count() == before


def test_bulk_discard_with_a_reason(run_failure, operator: User, viewer: User):
    _, a = run_failure()
    _, b = run_failure()
    client = client_for(operator)
    for payload in ({"ids": [a.pk]}, {"ids": [a.pk], "reason": " "}):
        refused = client.post(f"{BASE}discard/", payload, format="json")
        assert refused.status_code == 400
    unknown = client.post(f"{BASE}discard/", {"ids": [a.pk, 424242], "reason": "x"}, format="json")
    assert unknown.status_code == 404 and "424242" in body(unknown)["error"]["message"]
    no_group = client.post(f"{BASE}groups/{'0' * 16}/discard/", {"reason": "x"}, format="json")
    assert no_group.status_code == 404
    assert DeadLetter.objects.open().count() == 2
    denied = client_for(viewer).post(
        f"{BASE}discard/", {"ids": [a.pk], "reason": "x"}, format="json"
    )
    assert denied.status_code == 403

    services.resolve(b, by=operator, note="fixed")
    done = client.post(f"{BASE}discard/", {"ids": [a.pk, b.pk], "reason": "dupes"}, format="json")
    assert done.status_code == 200
    assert body(done)["discarded"] == [a.pk]
    assert [s["dead_letter_id"] for s in body(done)["skipped"]] == [b.pk]
    a.refresh_from_db()
    assert a.resolution == Resolution.DISCARDED and a.note == "dupes" and a.resolved_by == operator

    _, c = run_failure()
    _, d = run_failure()
    url = f"{BASE}groups/{c.signature}/discard/"
    assert client.post(url, {}, format="json").status_code == 400
    assert client_for(viewer).post(url, {"reason": "x"}, format="json").status_code == 403
    grouped = client.post(url, {"reason": "feed fixed"}, format="json")
    assert grouped.status_code == 200 and body(grouped)["discarded"] == [c.pk, d.pk]


def test_edit_and_replay(
    run_failure, flaky_pipeline, operator: User, django_capture_on_commit_callbacks
):
    _, letter = run_failure("dlq_test.flaky", {"tier": "T2"})
    client = client_for(operator)
    url = f"{BASE}{letter.pk}/edit-and-replay/"

    bad = client.post(url, {"params": {"tier": "T9"}}, format="json")
    assert bad.status_code == 400
    assert body(bad)["error"]["code"] == "dead_letter_params_invalid"
    assert "tier" in body(bad)["error"]["details"]["params"]
    assert client.post(url, {"params": "tier=T1"}, format="json").status_code == 400
    letter.refresh_from_db()
    assert letter.is_open and letter.params_changes == []

    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(url, {"params": {"tier": "OTC"}}, format="json")
    assert done.status_code == 202, done.content
    data = body(done)
    assert data["params"] == {"tier": "OTC"} and data["original_params"] == {"tier": "T2"}
    assert data["params_changes"][0]["diff"] == {"tier": {"old": "T2", "new": "OTC"}}
    assert data["params_changes"][0]["by"] == operator.username
    assert done["Location"].endswith(f"/api/v1/executions/{data['replay_execution']}/")
    assert Execution.objects.get(pk=data["replay_execution"]).params == {"tier": "OTC"}

    again = client.post(url, {"params": {"tier": "T1"}}, format="json")
    assert again.status_code == 409
