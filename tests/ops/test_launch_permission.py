"""Pipelines with a launch permission (paced dead-letter replays, the retry pass) are
started by hand only by users who hold it, in the API and in the admin alike."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from executions.models import Execution
from executions.registry import registry
from tests.api.conftest import assert_error, token_client
from tests.ops.conftest import make_user

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]

RUN = "admin:executions_execution_run"
GUARDED = ("dlq.replay_batch", "ops.dlq_retry")
LAUNCHER = ("executions.view_execution", "executions.add_execution")


def test_the_replaying_pipelines_declare_the_replay_permission() -> None:
    for name in GUARDED:
        assert registry.get(name).launch_permission == "dlq.replay_deadletter"
    assert registry.get("otc.full_etl").launch_permission is None


@pytest.mark.parametrize("pipeline", GUARDED)
def test_api_submission_needs_the_pipelines_own_permission(
    stub_backend: Any, pipeline: str
) -> None:
    client = token_client(make_user("launcher", *LAUNCHER))
    body = {"pipeline": pipeline, "params": {"ids": [1]} if pipeline == "dlq.replay_batch" else {}}
    error = assert_error(
        client.post("/api/v1/executions/", body, format="json"), 403, "permission_denied"
    )
    assert "dlq.replay_deadletter" in error["message"]
    assert Execution.objects.count() == 0


def test_api_submission_with_the_permission_is_accepted(stub_backend: Any) -> None:
    client = token_client(make_user("replayer", *LAUNCHER, "dlq.replay_deadletter"))
    response = client.post("/api/v1/executions/", {"pipeline": "ops.dlq_retry"}, format="json")
    assert response.status_code == 202, response.content
    assert Execution.objects.get().pipeline == "ops.dlq_retry"


def test_admin_run_page_hides_and_refuses_guarded_pipelines(stub_backend: Any) -> None:
    client = Client()
    client.force_login(make_user("launcher", *LAUNCHER))
    listing = client.get(reverse(RUN)).content.decode()
    assert "otc.full_etl" in listing
    assert "ops.dlq_retry" not in listing and "dlq.replay_batch" not in listing
    response = client.post(reverse(RUN), {"pipeline": "ops.dlq_retry", "params-limit": "5"})
    assert response.status_code == 403
    assert "needs the dlq.replay_deadletter permission" in response.content.decode()
    assert Execution.objects.count() == 0


def test_a_hand_started_replay_batch_records_who_started_it(stub_backend: Any) -> None:
    client = token_client(make_user("replayer", *LAUNCHER, "dlq.replay_deadletter"))
    body = {"pipeline": "dlq.replay_batch", "params": {"ids": [1], "requested_by": "someone"}}
    response = client.post("/api/v1/executions/", body, format="json")
    assert response.status_code == 202, response.content
    assert Execution.objects.get().params["requested_by"] == "replayer"
    assert registry.get("dlq.replay_batch").actor_param == "requested_by"
    assert registry.get("otc.full_etl").launched_by(object(), {"a": 1}) == {"a": 1}


def test_what_was_sent_as_the_actor_is_still_validated(stub_backend: Any) -> None:
    client = token_client(make_user("replayer", *LAUNCHER, "dlq.replay_deadletter"))
    body = {"pipeline": "dlq.replay_batch", "params": {"ids": [1], "requested_by": "x" * 151}}
    response = client.post("/api/v1/executions/", body, format="json")
    assert_error(response, 400, "invalid_params")
    assert Execution.objects.count() == 0
