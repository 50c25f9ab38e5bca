"""The executions API over the stub backend: list/filter/order/paginate, submit through
the Dispatcher, retrieve, events, cancel, and the pipeline registry."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from rest_framework.test import APIClient

from executions.dispatcher import dispatch
from executions.models import ALLOWED_TRANSITIONS, Execution, ExecutionStatus, TriggerSource
from executions.services import transition
from spine.time import utc_now
from tests.api.conftest import TEST_PIPELINE, EchoParams, assert_error

pytestmark = pytest.mark.django_db

LIST = "/api/v1/executions/"


@pytest.fixture(autouse=True)
def _broker_records_only(stub_backend: object) -> object:
    """Every test here submits to the stub backend (the root conftest's fixture)."""
    return stub_backend


def make(
    week: str = "2025-12-15",
    *,
    tier: str = "T1",
    status: str = ExecutionStatus.PENDING,
    trigger: str = TriggerSource.CLI,
    lane: str | None = None,
) -> Execution:
    """An execution made the only way there is (the Dispatcher), then moved along the
    status machine by the execution service to ``status`` (whatever status the
    Dispatcher leaves a new execution in)."""
    execution = dispatch(
        TEST_PIPELINE, {"week": week, "tier": tier}, trigger_source=trigger, lane=lane
    )
    for step in path_to(execution.status, status):
        execution = transition(execution, step)
    return execution


def path_to(start: str, goal: str) -> list[str]:
    """The steps of a normal life (pending → queued → running → end) from ``start`` to
    ``goal``; backwards (queued → pending) when the status machine allows it."""
    chain = [ExecutionStatus.PENDING, ExecutionStatus.QUEUED, ExecutionStatus.RUNNING]
    here = chain.index(start)
    if goal in chain and chain.index(goal) < here:
        assert goal in ALLOWED_TRANSITIONS[start]
        return [goal]
    if goal in chain:
        return chain[here + 1 : chain.index(goal) + 1]
    return [*chain[here + 1 :], goal]


def ids(response) -> list[str]:
    return [row["id"] for row in response.json()["results"]]


# --- list, filters, ordering, pagination -------------------------------------------


def test_list_is_paginated_with_totals(test_pipeline, reader_client: APIClient) -> None:
    made = [make(f"2025-12-{day:02d}") for day in (1, 8, 15)]
    first = reader_client.get(LIST, {"page_size": 2})
    assert first.status_code == 200
    body = first.json()
    assert body["count"] == 3
    assert body["previous"] is None
    assert body["next"].endswith("page=2&page_size=2")
    assert ids(first) == [str(made[2].pk), str(made[1].pk)]  # newest first
    second = reader_client.get(LIST, {"page_size": 2, "page": 2})
    assert ids(second) == [str(made[0].pk)]
    assert second.json()["next"] is None
    assert second.json()["previous"]
    assert_error(reader_client.get(LIST, {"page": 3, "page_size": 2}), 404, "not_found")


def test_page_size_is_bounded(test_pipeline, reader_client: APIClient, monkeypatch) -> None:
    """Up to the maximum a page holds what was asked; beyond it is a 400 naming the
    bound, not a page of another size."""
    from spine.api.pagination import StandardPagination

    monkeypatch.setattr(StandardPagination, "max_page_size", 2)
    for day in (1, 8, 15):
        make(f"2025-12-{day:02d}")
    assert len(reader_client.get(LIST, {"page_size": 2}).json()["results"]) == 2
    error = assert_error(reader_client.get(LIST, {"page_size": 1000}), 400, "validation_error")
    assert "from 1 to 2" in error["details"]["page_size"][0]


def test_list_row_shape(test_pipeline, reader_client: APIClient) -> None:
    execution = make()
    row = reader_client.get(LIST).json()["results"][0]
    assert row["id"] == str(execution.pk)
    assert row["url"].endswith(f"/api/v1/executions/{execution.pk}/")
    assert row["pipeline"] == TEST_PIPELINE
    assert row["params"] == {"week": "2025-12-15", "tier": "T1"}
    assert row["status"] == Execution.objects.get(pk=execution.pk).status
    assert row["trigger_source"] == "cli"
    assert row["created_at"].endswith("Z")
    assert "traceback" not in row and "result" not in row


def test_filter_by_status_lane_trigger_and_pipeline(test_pipeline, reader_client) -> None:
    running = make("2025-12-01", status=ExecutionStatus.RUNNING)
    failed = make("2025-12-08", status=ExecutionStatus.FAILED, trigger=TriggerSource.API)
    backfill = make("2025-12-15", lane="backfill", trigger=TriggerSource.SCHEDULE)

    assert ids(reader_client.get(LIST, {"status": "running"})) == [str(running.pk)]
    both = reader_client.get(LIST + "?status=running&status=failed")
    assert set(ids(both)) == {str(running.pk), str(failed.pk)}
    assert ids(reader_client.get(LIST, {"lane": "backfill"})) == [str(backfill.pk)]
    assert ids(reader_client.get(LIST, {"trigger_source": "api"})) == [str(failed.pk)]
    assert len(ids(reader_client.get(LIST, {"pipeline": TEST_PIPELINE}))) == 3
    assert ids(reader_client.get(LIST, {"pipeline": "other"})) == []


def test_filter_by_created_range(test_pipeline, reader_client: APIClient) -> None:
    now = utc_now()
    old, middle, new = make("2025-12-01"), make("2025-12-08"), make("2025-12-15")
    for execution, days in ((old, 10), (middle, 5), (new, 1)):
        Execution.objects.filter(pk=execution.pk).update(created_at=now - timedelta(days=days))
    since = (now - timedelta(days=6)).strftime("%Y-%m-%dT%H:%M:%SZ")
    until = (now - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%S")  # naive = UTC
    assert set(ids(reader_client.get(LIST, {"created_after": since}))) == {
        str(middle.pk),
        str(new.pk),
    }
    assert ids(reader_client.get(LIST, {"created_after": since, "created_before": until})) == [
        str(middle.pk)
    ]


def test_odd_but_valid_offsets_are_read_as_utc(test_pipeline, reader_client) -> None:
    execution = make()
    response = reader_client.get(LIST, {"created_after": "0369-06-28T03:25:39.256-17:47"})
    assert ids(response) == [str(execution.pk)]
    # Valid ISO, but its UTC form is past year 9999: a 400, not a crash.
    overflow = reader_client.get(LIST, {"created_after": "9999-12-31T23:50:00-00:30"})
    assert_error(overflow, 400, "validation_error")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "exploded"}, "status"),
        ({"lane": "fast"}, "lane"),
        ({"trigger_source": "robot"}, "trigger_source"),
        ({"created_after": "last tuesday"}, "created_after"),
        ({"created_before": "0001-01-01T00:00:00+05:00"}, "created_before"),
        ({"parent": "not-a-uuid"}, "parent"),
    ],
)
def test_bad_filter_values_are_400(reader_client, params: dict, field: str) -> None:
    error = assert_error(reader_client.get(LIST, params), 400, "validation_error")
    assert field in error["details"]


def test_ordering(test_pipeline, reader_client: APIClient) -> None:
    a = make("2025-12-01", status=ExecutionStatus.RUNNING)
    b = make("2025-12-08", status=ExecutionStatus.FAILED)
    c = make("2025-12-15")
    assert ids(reader_client.get(LIST, {"ordering": "status"})) == [
        str(b.pk),
        str(c.pk),
        str(a.pk),
    ]
    assert ids(reader_client.get(LIST, {"ordering": "created_at"})) == [
        str(a.pk),
        str(b.pk),
        str(c.pk),
    ]


def test_unknown_sort_field_is_400_naming_the_allowed_ones(reader_client: APIClient) -> None:
    error = assert_error(reader_client.get(LIST, {"ordering": "-params"}), 400, "validation_error")
    (message,) = error["details"]["ordering"]
    assert "-params" in message
    assert "created_at" in message and "status" in message


# --- submit ---------------------------------------------------------------------------


def test_submit_is_202_with_location(
    test_pipeline, operator_client: APIClient, stub_backend, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = operator_client.post(
            LIST,
            {"pipeline": TEST_PIPELINE, "params": {"week": "2025-12-17"}},
            format="json",
            HTTP_X_REQUEST_ID="client-trace-1",
        )
    assert response.status_code == 202, response.json()
    body = response.json()
    execution = Execution.objects.get(pk=body["id"])
    assert response["Location"] == f"http://testserver/api/v1/executions/{execution.pk}/"
    assert body["url"] == response["Location"]
    assert execution.trigger_source == TriggerSource.API
    assert execution.request_id == "client-trace-1"
    assert execution.params == {"week": "2025-12-17", "tier": "T1"}
    assert execution.lock_key == "api_test:T1:2025-12-17"
    assert stub_backend.submitted == [execution.pk]  # handed over after the commit


def test_submit_can_choose_the_lane(test_pipeline, operator_client: APIClient) -> None:
    response = operator_client.post(
        LIST,
        {"pipeline": TEST_PIPELINE, "params": {"week": "2025-12-17"}, "lane": "backfill"},
        format="json",
    )
    assert response.status_code == 202
    assert response.json()["lane"] == "backfill"


def test_unknown_pipeline_is_400_and_writes_nothing(test_pipeline, operator_client) -> None:
    response = operator_client.post(LIST, {"pipeline": "nope"}, format="json")
    error = assert_error(response, 400, "unknown_pipeline")
    assert "nope" in error["details"]["pipeline"][0]
    assert TEST_PIPELINE in error["details"]["known_pipelines"]
    assert not Execution.objects.exists()


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "week"),
        ({"week": "not-a-date"}, "week"),
        ({"week": "2025-12-15", "tier": "NYSE"}, "tier"),
        ({"week": "2025-12-15", "colour": "blue"}, "colour"),
    ],
)
def test_bad_params_are_400_per_field(
    test_pipeline, operator_client: APIClient, params: dict, field: str
) -> None:
    response = operator_client.post(
        LIST, {"pipeline": TEST_PIPELINE, "params": params}, format="json"
    )
    error = assert_error(response, 400, "invalid_params")
    assert field in error["details"]["params"]
    assert not Execution.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "pipeline"),
        ({"pipeline": TEST_PIPELINE, "params": "week=2025-12-15"}, "params"),
        ({"pipeline": TEST_PIPELINE, "params": {"week": "2025-12-15"}, "lane": "fast"}, "lane"),
        ({"pipeline": "x" * 101}, "pipeline"),
    ],
)
def test_bad_body_is_400(test_pipeline, operator_client, body: dict, field: str) -> None:
    error = assert_error(operator_client.post(LIST, body, format="json"), 400, "validation_error")
    assert field in error["details"]


def test_submit_needs_permission(test_pipeline, reader_client, anon_client) -> None:
    body = {"pipeline": TEST_PIPELINE, "params": {"week": "2025-12-15"}}
    assert_error(reader_client.post(LIST, body, format="json"), 403, "permission_denied")
    assert_error(anon_client.post(LIST, body, format="json"), 401, "not_authenticated")
    assert not Execution.objects.exists()


# --- retrieve and events ----------------------------------------------------------------


def test_retrieve_in_full(test_pipeline, reader_client: APIClient) -> None:
    execution = make(status=ExecutionStatus.SUCCEEDED)
    Execution.objects.filter(pk=execution.pk).update(result={"rows": 12})
    body = reader_client.get(f"{LIST}{execution.pk}/").json()
    assert body["id"] == str(execution.pk)
    assert body["status"] == "succeeded"
    assert body["result"] == {"rows": 12}
    assert body["traceback"] == ""
    assert body["duration_seconds"] is not None
    assert body["events_url"].endswith(f"/api/v1/executions/{execution.pk}/events/")


def test_retrieve_unknown_or_malformed_id_is_404(reader_client: APIClient) -> None:
    assert_error(reader_client.get(f"{LIST}{uuid.uuid4()}/"), 404, "not_found")
    assert_error(reader_client.get(f"{LIST}not-a-uuid/"), 404, "not_found")


def test_events_in_order_and_paginated(test_pipeline, reader_client: APIClient) -> None:
    execution = make(status=ExecutionStatus.FAILED)
    response = reader_client.get(f"{LIST}{execution.pk}/events/")
    assert response.status_code == 200
    body = response.json()
    history = list(execution.events.order_by("timestamp", "id").values_list("type", flat=True))
    types = [event["type"] for event in body["results"]]
    assert types == history
    assert types[0] == "created" and types[-2:] == ["running", "failed"]
    assert body["count"] == len(history)
    stamps = [event["timestamp"] for event in body["results"]]
    assert stamps == sorted(stamps)
    assert body["results"][-1]["data"] == {**body["results"][-1]["data"], "to": "failed"}
    size = len(history) - 1
    paged = reader_client.get(f"{LIST}{execution.pk}/events/", {"page_size": size, "page": 2})
    assert [event["type"] for event in paged.json()["results"]] == ["failed"]


def test_events_of_unknown_execution_is_404(reader_client: APIClient) -> None:
    assert_error(reader_client.get(f"{LIST}{uuid.uuid4()}/events/"), 404, "not_found")


# --- cancel -------------------------------------------------------------------------------


def test_cancel(test_pipeline, operator_client: APIClient) -> None:
    execution = make(status=ExecutionStatus.QUEUED)
    response = operator_client.post(
        f"{LIST}{execution.pk}/cancel/", {"reason": "wrong week"}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "cancelled"
    event = execution.events.order_by("-timestamp", "-id").first()
    assert event.type == "cancelled"
    assert event.data["by"] == "operator"
    assert event.data["reason"] == "wrong week"


def test_cancel_without_a_body(test_pipeline, operator_client: APIClient) -> None:
    execution = make()
    assert operator_client.post(f"{LIST}{execution.pk}/cancel/").status_code == 200


def test_cancel_after_the_end_is_409(test_pipeline, operator_client: APIClient) -> None:
    execution = make(status=ExecutionStatus.SUCCEEDED)
    error = assert_error(
        operator_client.post(f"{LIST}{execution.pk}/cancel/"), 409, "not_cancellable"
    )
    assert "succeeded" in error["message"]
    assert error["details"] == {"status": "succeeded"}


def test_cancel_race_is_409(test_pipeline, operator_client: APIClient, monkeypatch) -> None:
    """The execution ends between the API's read and the cancel: still a clear 409."""
    execution = make(status=ExecutionStatus.RUNNING)
    from executions import dispatcher

    real_cancel = dispatcher.cancel

    def finish_then_cancel(target, **kwargs):
        transition(Execution.objects.get(pk=target.pk), ExecutionStatus.SUCCEEDED)
        return real_cancel(target, **kwargs)

    monkeypatch.setattr(dispatcher, "cancel", finish_then_cancel)
    error = assert_error(
        operator_client.post(f"{LIST}{execution.pk}/cancel/"), 409, "not_cancellable"
    )
    assert error["details"] == {"status": "succeeded"}


def test_cancel_needs_permission(test_pipeline, reader_client: APIClient) -> None:
    execution = make()
    error = assert_error(
        reader_client.post(f"{LIST}{execution.pk}/cancel/"), 403, "permission_denied"
    )
    assert "executions.cancel_execution" in error["message"]
    execution.refresh_from_db()
    assert execution.status == "pending"


def test_cancel_validation_and_404(test_pipeline, operator_client: APIClient) -> None:
    execution = make()
    error = assert_error(
        operator_client.post(f"{LIST}{execution.pk}/cancel/", {"reason": "x" * 1001}),
        400,
        "validation_error",
    )
    assert "reason" in error["details"]
    assert_error(operator_client.post(f"{LIST}{uuid.uuid4()}/cancel/"), 404, "not_found")


# --- pipelines ------------------------------------------------------------------------------


def test_pipelines_list_the_registry(test_pipeline, reader_client: APIClient) -> None:
    body = reader_client.get("/api/v1/pipelines/").json()
    assert body["count"] >= 1
    (echo,) = [row for row in body["results"] if row["name"] == TEST_PIPELINE]
    assert echo == {
        "name": TEST_PIPELINE,
        "description": "Echo its params (API tests).",
        "lane": "default",
        "timeout_seconds": 60,
        "lock_key": "api_test:{tier}:{week}",
        "lock_policy": "wait",
        "retry": {"max_retries": 2, "backoff_seconds": 30.0, "backoff_max_seconds": 3600.0},
        "max_requeues": 0,
        "params_schema": {
            "week": {"type": "date", "required": True, "help": "Any date in the week."},
            "tier": {
                "type": "choice",
                "required": False,
                "default": "T1",
                "choices": ["T1", "T2", "OTC"],
            },
        },
    }


def test_pipeline_by_name(test_pipeline, reader_client: APIClient) -> None:
    response = reader_client.get(f"/api/v1/pipelines/{TEST_PIPELINE}/")
    assert response.status_code == 200
    assert response.json()["name"] == TEST_PIPELINE
    assert_error(reader_client.get("/api/v1/pipelines/no.such/"), 404, "not_found")


def test_computed_lock_keys_are_described(reader_client: APIClient) -> None:
    from executions.registry import Pipeline, registry

    registry.register(
        Pipeline(
            name="api_test.computed",
            handler=lambda ctx: None,
            params=EchoParams,
            description="Computed lock.",
            lock_key=lambda params: f"x:{params['week']}",
        )
    )
    try:
        body = reader_client.get("/api/v1/pipelines/api_test.computed/").json()
    finally:
        registry.unregister("api_test.computed")
    assert body["lock_key"] == "computed from params"


@pytest.mark.embedded
def test_local_backend_runs_a_submission_through_the_runner(
    settings, test_pipeline, operator_client: APIClient, django_capture_on_commit_callbacks
) -> None:
    """The embedded default: the API submits, the local backend runs it in-process."""
    settings.EXECUTION_BACKEND = "local"
    with django_capture_on_commit_callbacks(execute=True):
        response = operator_client.post(
            LIST, {"pipeline": TEST_PIPELINE, "params": {"week": "2025-12-17"}}, format="json"
        )
    assert response.status_code == 202, response.json()
    body = operator_client.get(response["Location"]).json()
    assert body["status"] == "succeeded", body
    assert body["result"] == {"ok": True}
    events = operator_client.get(body["events_url"]).json()["results"]
    assert [event["type"] for event in events][0] == "created"
    assert events[-1]["type"] == "succeeded"
