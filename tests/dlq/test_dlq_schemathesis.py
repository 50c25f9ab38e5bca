"""Property-based run over the documented dead-letter endpoints: whatever schemathesis
sends, the API never answers 5xx and errors keep the standard shape.

Bounded and derandomized like the platform's own run; letters exist (open and
closed) so retrieve and the actions meet real rows, on the stub backend.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections

from dlq import services
from executions.dispatcher import dispatch
from spine.api.tokens import issue_token
from tests.dlq.dlq_support import make_user

MAX_EXAMPLES = 15

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application()).include(
    path_regex=r"^/api/v1/dlq"
)


@pytest.fixture(autouse=True)
def _keep_the_test_connection() -> Iterator[None]:
    """Keep the test's connection across WSGI requests (the test is one transaction)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.fixture
def auth_headers(db: None, settings: Any, stub_backend: Any) -> dict[str, str]:
    settings.SPINE_RATELIMIT_ENABLED = False
    for index in range(3):
        failed = dispatch("diag.fail", {"message": f"m{index}"}, trigger_source="cli")
        letter = services.park(failed, failure_kind="error")
        if index == 2:
            services.discard(letter, by=None)
    user = make_user(
        "dlq-fuzzer", "dlq.view_deadletter", "dlq.change_deadletter", "dlq.replay_deadletter"
    )
    token, _ = issue_token(user)
    return {"Authorization": f"Token {token.key}"}


@schema.parametrize()
@hypothesis.settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
    derandomize=True,
)
def test_no_server_errors(case: schemathesis.Case, auth_headers: dict[str, str]) -> None:
    response = case.call(headers=auth_headers)
    assert response.status_code < 500, (case.method, case.formatted_path, response.text[:500])
    if response.status_code >= 400:
        body = json.loads(response.text)
        assert set(body) == {"error"}, body
        assert set(body["error"]) == {"code", "message", "details"}, body
