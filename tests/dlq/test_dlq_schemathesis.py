"""Property-based run over the documented dead-letter endpoints with every schemathesis
check: whatever it sends, the API answers as its schema says and errors keep the
standard shape.

Bounded and derandomized like the platform's own run; letters exist (open and
closed) so retrieve and the actions meet real rows, on the stub backend.
"""

from __future__ import annotations

from typing import Any

import hypothesis
import pytest
import schemathesis

from dlq import services
from executions.dispatcher import dispatch
from spine.api.tokens import issue_token
from tests.dlq.dlq_support import make_user
from tests.support.api_fuzz import (  # noqa: F401 (autouse fixture)
    _keep_the_test_connection,
    api_schema,
    assert_conforms,
)

MAX_EXAMPLES = 15

schema = api_schema(r"^/api/v1/dlq")


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
    assert_conforms(case, auth_headers)
