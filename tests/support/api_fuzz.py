"""Shared pieces of the schemathesis runs over the API: the schema loaded through
WSGI, the test connection kept across requests, and the verdict every run asserts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections

from tests.support import schemathesis_hooks  # noqa: F401 (registers the hooks)


def api_schema(path_regex: str) -> Any:
    """The app's own OpenAPI schema, limited to the paths a run covers."""
    return schemathesis.openapi.from_wsgi(
        "/api/schema/?format=json", get_wsgi_application()
    ).include(path_regex=path_regex)


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


def assert_no_server_error(case: schemathesis.Case, response: Any) -> None:
    """Below 500, and any error in the standard shape."""
    assert response.status_code < 500, (case.method, case.formatted_path, response.text[:500])
    if response.status_code >= 400:
        body = json.loads(response.text)
        assert set(body) == {"error"}, body
        assert set(body["error"]) == {"code", "message", "details"}, body


def assert_conforms(case: schemathesis.Case, headers: dict[str, str]) -> None:
    """One request checked by every schemathesis check (status codes, bodies and headers
    as documented, invalid input refused, valid input accepted...), and any error in
    the standard shape."""
    response = case.call_and_validate(headers=headers)
    assert_no_server_error(case, response)
