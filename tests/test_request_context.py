"""The request-ID middleware: accepts, sanitises, generates, echoes, logs."""

from __future__ import annotations

import io
import json
import logging
import uuid

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory

from spine.context import bind, get_execution_id, get_request_id
from spine.logging import ContextFilter, SpineJsonFormatter
from spine.middleware import MAX_REQUEST_ID_LENGTH, RequestContextMiddleware, clean_request_id

pytestmark = pytest.mark.embedded


def run_middleware(**headers: str) -> tuple[HttpResponse, list[str | None]]:
    seen: list[str | None] = []

    def view(request: HttpRequest) -> HttpResponse:
        seen.append(get_request_id())
        return HttpResponse("ok")

    request = RequestFactory().get("/anything", **headers)
    return RequestContextMiddleware(view)(request), seen


def test_accepts_x_request_id() -> None:
    response, seen = run_middleware(HTTP_X_REQUEST_ID="abc-123.def:9")
    assert response["X-Request-ID"] == "abc-123.def:9"
    assert seen == ["abc-123.def:9"]


def test_accepts_x_correlation_id() -> None:
    response, seen = run_middleware(HTTP_X_CORRELATION_ID="trace_42")
    assert response["X-Request-ID"] == "trace_42"
    assert seen == ["trace_42"]


def test_request_id_preferred_over_correlation_id() -> None:
    response, _ = run_middleware(HTTP_X_REQUEST_ID="first", HTTP_X_CORRELATION_ID="second")
    assert response["X-Request-ID"] == "first"


@pytest.mark.parametrize(
    "bad",
    ["", "has space", "x" * (MAX_REQUEST_ID_LENGTH + 1), "<script>", "a\nb", "-leading", "é"],
)
def test_unsafe_ids_are_replaced_by_a_uuid(bad: str) -> None:
    assert clean_request_id(bad) is None
    response, seen = run_middleware(HTTP_X_REQUEST_ID=bad)
    generated = response["X-Request-ID"]
    assert str(uuid.UUID(generated)) == generated
    assert seen == [generated]


def test_generates_when_absent_and_resets_after() -> None:
    response, seen = run_middleware()
    assert uuid.UUID(response["X-Request-ID"])
    assert seen == [response["X-Request-ID"]]
    assert get_request_id() is None


def test_echoed_on_error_responses(client) -> None:
    response = client.get("/no-such-page/", HTTP_X_REQUEST_ID="err-1")
    assert response.status_code == 404
    assert response["X-Request-ID"] == "err-1"


def json_log_line(logger_name: str, message: str) -> dict:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(SpineJsonFormatter())
    handler.addFilter(ContextFilter())
    logger = logging.getLogger(logger_name)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        logger.info(message)
    finally:
        logger.removeHandler(handler)
    return json.loads(stream.getvalue())


def test_json_log_records_carry_request_and_execution_ids() -> None:
    with bind(request_id="req-7"):
        record = json_log_line("spine.test", "hello")
    assert record["message"] == "hello"
    assert record["level"] == "INFO"
    assert record["logger"] == "spine.test"
    assert record["request_id"] == "req-7"
    assert "timestamp" in record
    assert "execution_id" not in record
    with bind(request_id="req-8", execution_id="exec-1"):
        assert get_execution_id() == "exec-1"
        record = json_log_line("spine.test", "running")
    assert record["execution_id"] == "exec-1"
    assert record["request_id"] == "req-8"


def test_request_id_reaches_logs_during_a_request() -> None:
    captured: list[dict] = []

    def view(request: HttpRequest) -> HttpResponse:
        captured.append(json_log_line("spine.view", "inside"))
        return HttpResponse("ok")

    request = RequestFactory().get("/", HTTP_X_REQUEST_ID="logged-id")
    RequestContextMiddleware(view)(request)
    assert captured[0]["request_id"] == "logged-id"
