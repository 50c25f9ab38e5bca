"""Property-based run over the documented executions and pipelines endpoints: whatever
schemathesis sends (valid or not), the API never answers 5xx and always answers
errors in the standard shape.

Bounded (a few examples per operation, derandomized) so it stays a quick, repeatable
part of the suite. The schema is loaded from the app itself through WSGI.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis

from executions.backends import get_backend
from spine.api.tokens import issue_token
from tests.api.conftest import make_user
from tests.api.otc_data import OtcData, loaded
from tests.support.api_fuzz import (  # noqa: F401 (autouse fixture)
    _keep_the_test_connection,
    api_schema,
    assert_no_server_error,
)

MAX_EXAMPLES = 15

schema = api_schema(r"^/api/v1/(executions|pipelines)")


@pytest.fixture
def auth_headers(db: None, settings, test_pipeline) -> dict[str, str]:
    """A user allowed to read, submit and cancel, on the stub backend, without rate limits
    (the run would spend any budget within seconds)."""
    settings.EXECUTION_BACKEND = "stub"
    settings.SPINE_RATELIMIT_ENABLED = False
    get_backend().reset()
    user = make_user(
        "fuzzer",
        "executions.view_execution",
        "executions.add_execution",
        "executions.cancel_execution",
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
    assert_no_server_error(case, case.call(headers=auth_headers))


# The OTC analytics, over the real FINRA week and generated weeks loaded once, so the
# examples reach real rows (symbols and MPIDs that exist come up through the examples'
# shrinking towards short strings only by chance; the fixed-path checks in
# test_otc_api cover those paths).
otc_schema = api_schema(r"^/api/v1/otc/")


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


# The file upload (multipart), as a client allowed to submit, on the stub backend.
files_schema = api_schema(r"^/api/v1/otc/files/")


@files_schema.parametrize()
@hypothesis.settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
    derandomize=True,
)
def test_upload_no_server_errors(case: schemathesis.Case, auth_headers: dict[str, str]) -> None:
    assert_no_server_error(case, case.call(headers=auth_headers))
