"""Property-based run over the whole API schema with every schemathesis check: whatever
schemathesis sends, valid or not, the API answers as its schema says (no 5xx, only
documented statuses and bodies, invalid requests refused, valid ones accepted) and
every error is in the standard shape.

Bounded (a few examples per operation, derandomized) so it stays a quick, repeatable
part of the suite. The schema is loaded from the app itself through WSGI, so an
endpoint added later is covered without touching this file. Run as a superuser (on
the stub backend, so submissions run nothing) and as an anonymous client.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from django.contrib.auth.models import User

from dlq import services as dlq_services
from executions.backends import get_backend
from executions.dispatcher import dispatch
from executions.pipelines import register_diagnostic_pipelines
from spine.api.tokens import issue_token
from tests.api.otc_data import OtcData, loaded
from tests.support.api_fuzz import (  # noqa: F401 (autouse fixture)
    _keep_the_test_connection,
    api_schema,
    assert_conforms,
)

MAX_EXAMPLES = 12

schema = api_schema(r"^/api/")


@pytest.fixture(scope="module")
def otc_data(
    django_db_setup: None, django_db_blocker: Any, real_otc_file: Path
) -> Iterator[OtcData]:
    yield from loaded(django_db_blocker, real_otc_file)


@pytest.fixture
def fuzz_settings(db: None, settings: Any, otc_data: OtcData) -> None:
    """The stub backend (a submission records, runs nothing), no rate limits (the run
    would spend any budget within seconds), and dead letters open and closed."""
    settings.EXECUTION_BACKEND = "stub"
    settings.SPINE_RATELIMIT_ENABLED = False
    get_backend().reset()
    register_diagnostic_pipelines()
    for index in range(3):
        failed = dispatch("diag.fail", {"message": f"m{index}"}, trigger_source="cli")
        letter = dlq_services.park(failed, failure_kind="error")
        if index == 2:
            dlq_services.discard(letter, by=None)


@pytest.fixture
def superuser_headers(fuzz_settings: None) -> dict[str, str]:
    user = User.objects.create_superuser("fuzz-admin", password="not-used-pw-123")
    token, _ = issue_token(user)
    return {"Authorization": f"Token {token.key}"}


_SETTINGS = hypothesis.settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
    derandomize=True,
    database=None,
)


@schema.parametrize()
@_SETTINGS
def test_api_conforms_to_its_schema(
    case: schemathesis.Case, superuser_headers: dict[str, str]
) -> None:
    assert_conforms(case, superuser_headers)


@schema.parametrize()
@hypothesis.settings(_SETTINGS, max_examples=4)
def test_api_conforms_to_its_schema_anonymous(case: schemathesis.Case, fuzz_settings: None) -> None:
    assert_conforms(case, {})
