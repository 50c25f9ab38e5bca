"""One error body everywhere: DRF errors, Django's handlers, plain views, crashes."""

from __future__ import annotations

import json

import pytest
from django.test import Client, RequestFactory
from rest_framework.test import APIClient

from executions.registry import InvalidParams, UnknownPipeline
from spine.api import errors
from tests.api.conftest import assert_error

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]


def test_unknown_api_path_is_json_404(reader_client: APIClient) -> None:
    error = assert_error(reader_client.get("/api/v1/nothing-here/"), 404, "not_found")
    assert error["details"]["path"] == "/api/v1/nothing-here/"


def test_missing_trailing_slash_names_the_right_path(reader_client: APIClient) -> None:
    error = assert_error(reader_client.post("/api/v1/executions", {}), 404, "not_found")
    assert error["details"]["did_you_mean"] == "/api/v1/executions/"
    assert "/api/v1/executions/" in error["message"]


def test_unknown_api_path_is_json_even_in_debug(settings, reader_client: APIClient) -> None:
    settings.DEBUG = True
    assert_error(reader_client.get("/api/nope"), 404, "not_found")


def test_method_not_allowed(reader_client: APIClient) -> None:
    error = assert_error(reader_client.delete("/api/v1/pipelines/"), 405, "method_not_allowed")
    assert "DELETE" in error["message"]


def test_not_authenticated_is_401_with_challenge(anon_client: APIClient) -> None:
    response = anon_client.get("/api/v1/executions/")
    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == "Token"


def test_bad_token_is_401(anon_client: APIClient) -> None:
    anon_client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert_error(anon_client.get("/api/v1/executions/"), 401, "authentication_failed")


def test_malformed_json_is_400(operator_client: APIClient) -> None:
    response = operator_client.post(
        "/api/v1/executions/", data="{not json", content_type="application/json"
    )
    assert_error(response, 400, "parse_error")


def test_form_bodies_are_415(operator_client: APIClient) -> None:
    response = operator_client.post(
        "/api/v1/executions/", data="pipeline=x", content_type="application/x-www-form-urlencoded"
    )
    assert_error(response, 415, "unsupported_media_type")


def test_validation_errors_name_fields(operator_client: APIClient) -> None:
    response = operator_client.post("/api/v1/executions/", {"params": []}, format="json")
    error = assert_error(response, 400, "validation_error")
    assert set(error["details"]) == {"pipeline", "params"}
    assert all(isinstance(messages, list) for messages in error["details"].values())


def test_unexpected_exception_is_json_500(monkeypatch, reader) -> None:
    from executions import selectors

    def boom() -> list:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(selectors, "pipeline_list", boom)
    client = APIClient(raise_request_exception=False)
    client.force_authenticate(reader)
    response = client.get("/api/v1/pipelines/", HTTP_X_REQUEST_ID="req-500")
    error = assert_error(response, 500, "server_error")
    assert error["details"]["request_id"] == "req-500"
    assert "secret internals" not in response.content.decode()
    assert response["X-Request-ID"] == "req-500"


def test_unexpected_exception_still_reaches_error_reporters(monkeypatch, reader) -> None:
    from executions import selectors

    monkeypatch.setattr(selectors, "pipeline_list", lambda: 1 / 0)
    client = APIClient()  # re-raises what got_request_exception reported
    client.force_authenticate(reader)
    with pytest.raises(ZeroDivisionError):
        client.get("/api/v1/pipelines/")


def test_domain_errors_map_to_400_with_field_details() -> None:
    unknown = errors.exception_handler(UnknownPipeline("nope", ["a", "b"]), {})
    assert unknown.status_code == 400
    assert unknown.data["error"]["code"] == "unknown_pipeline"
    assert unknown.data["error"]["details"]["pipeline"] == [
        str(UnknownPipeline("nope", ["a", "b"]))
    ]
    assert unknown.data["error"]["details"]["known_pipelines"] == ["a", "b"]

    invalid = errors.exception_handler(InvalidParams("p", {"week": ["bad date"]}), {})
    assert invalid.status_code == 400
    assert invalid.data["error"]["code"] == "invalid_params"
    assert invalid.data["error"]["details"] == {"params": {"week": ["bad date"]}}


def test_conflict_shape() -> None:
    response = errors.exception_handler(
        errors.Conflict("already done", code="not_cancellable", details={"status": "failed"}), {}
    )
    assert response.status_code == 409
    assert response.data == {
        "error": {
            "code": "not_cancellable",
            "message": "already done",
            "details": {"status": "failed"},
        }
    }


@pytest.mark.parametrize(
    ("handler", "status", "code"),
    [
        (lambda r: errors.handler404(r, Exception()), 404, "not_found"),
        (lambda r: errors.handler403(r, Exception()), 403, "permission_denied"),
        (lambda r: errors.handler400(r, Exception()), 400, "bad_request"),
        (errors.handler500, 500, "server_error"),
    ],
)
def test_django_handlers_answer_json_on_api_paths(handler, status: int, code: str) -> None:
    response = handler(RequestFactory().get("/api/v1/executions/"))
    assert response.status_code == status
    assert json.loads(response.content)["error"]["code"] == code


def test_django_handlers_keep_html_elsewhere() -> None:
    response = errors.handler404(RequestFactory().get("/admin/nowhere"), Exception())
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_health_post_is_json_405() -> None:
    response = Client().post("/health/ready")
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"
    assert json.loads(response.content)["error"]["code"] == "method_not_allowed"


def test_session_post_without_csrf_token_is_json_403(operator) -> None:
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(operator)
    response = client.post("/api/v1/executions/", {"pipeline": "x"}, format="json")
    error = assert_error(response, 403, "permission_denied")
    assert "CSRF" in error["message"]


def test_csrf_failure_view_is_json_on_api_paths() -> None:
    response = errors.csrf_failure(RequestFactory().post("/api/v1/x/"), reason="no cookie")
    assert response.status_code == 403
    assert json.loads(response.content)["error"]["code"] == "csrf_failed"
    html = errors.csrf_failure(RequestFactory().post("/admin/login/"), reason="no cookie")
    assert html["Content-Type"].startswith("text/html")
