"""Property-based run over the documented executions and pipelines endpoints: whatever
schemathesis sends (valid or not), the API never answers 5xx and always answers
errors in the standard shape.

Bounded (a few examples per operation, derandomized) so it stays a quick, repeatable
part of the suite. The schema is loaded from the app itself through WSGI.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections

from executions.backends import get_backend
from spine.api.tokens import issue_token
from tests.api.conftest import make_user
from tests.api.otc_data import OtcData, loaded

MAX_EXAMPLES = 15

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application()).include(
    path_regex=r"^/api/v1/(executions|pipelines)"
)


@pytest.fixture(autouse=True)
def _keep_the_test_connection() -> Iterator[None]:
    """Django closes the database connection at the end of every WSGI request; the test
    runs inside one transaction, so keep it open as Django's own test client does."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.fixture
def auth_headers(db: None, settings, test_pipeline) -> dict[str, str]:
    """A user allowed to submit and cancel, on the stub backend, without rate limits
    (the run would spend any budget within seconds)."""
    settings.EXECUTION_BACKEND = "stub"
    settings.SPINE_RATELIMIT_ENABLED = False
    get_backend().reset()
    user = make_user("fuzzer", "executions.add_execution", "executions.cancel_execution")
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
    assert_no_server_error(case, case.call(headers=auth_headers))


def assert_no_server_error(case: schemathesis.Case, response: Any) -> None:
    """Below 500, and any error in the standard shape."""
    assert response.status_code < 500, (case.method, case.formatted_path, response.text[:500])
    if response.status_code >= 400:
        body = json.loads(response.text)
        assert set(body) == {"error"}, body
        assert set(body["error"]) == {"code", "message", "details"}, body


# The OTC analytics, over the real FINRA week and generated weeks loaded once, so the
# examples reach real rows (symbols and MPIDs that exist come up through the examples'
# shrinking towards short strings only by chance; the fixed-path checks in
# test_otc_api cover those paths).
otc_schema = schemathesis.openapi.from_wsgi(
    "/api/schema/?format=json", get_wsgi_application()
).include(path_regex=r"^/api/v1/otc/")


@pytest.fixture(scope="module")
def otc_data(
    django_db_setup: None, django_db_blocker: Any, real_otc_file: Path
) -> Iterator[OtcData]:
    yield from loaded(django_db_blocker, real_otc_file)


@pytest.fixture
def reader_headers(db: None, settings, otc_data: OtcData) -> dict[str, str]:
    settings.SPINE_RATELIMIT_ENABLED = False
    token, _ = issue_token(make_user("otc-fuzzer"))
    return {"Authorization": f"Token {token.key}"}


@otc_schema.parametrize()
@hypothesis.settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
    derandomize=True,
)
def test_otc_no_server_errors(case: schemathesis.Case, reader_headers: dict[str, str]) -> None:
    assert_no_server_error(case, case.call(headers=reader_headers))
