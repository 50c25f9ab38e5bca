"""The OpenAPI document: valid, complete, served with a self-hosted Swagger UI; and
every API view follows the platform's conventions."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from django.core.management import call_command
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from spine.api.views import SpineAPIMixin

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]


def test_schema_validates_without_warnings(tmp_path: Path) -> None:
    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    schema = yaml.safe_load(target.read_text())
    assert schema["openapi"].startswith("3.")


def load_schema() -> dict:
    response = Client().get("/api/schema/")
    assert response.status_code == 200
    return yaml.safe_load(response.content)


def test_schema_is_served_publicly() -> None:
    schema = load_schema()
    assert "/api/v1/executions/" in schema["paths"]
    json_response = Client().get("/api/schema/?format=json")
    assert json_response["Content-Type"].startswith("application/vnd.oai.openapi+json")


def test_every_operation_is_documented() -> None:
    schema = load_schema()
    operations = [
        (path, method, op)
        for path, item in schema["paths"].items()
        for method, op in item.items()
        if method in {"get", "post", "put", "patch", "delete"}
    ]
    assert operations
    for path, method, op in operations:
        where = f"{method.upper()} {path}"
        assert op.get("summary") or op.get("description"), where
        responses = op["responses"]
        assert any(code.startswith("2") for code in responses), where
        for code in ("401", "403", "429"):
            assert responses[code]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/ErrorResponse"
            }, where
        assert "Retry-After" in responses["429"]["headers"], where
        if method != "get":
            assert "400" in responses, where
        if "{" in path:
            assert "404" in responses, where


def test_error_component_is_the_standard_shape() -> None:
    components = load_schema()["components"]["schemas"]
    error = components["ErrorResponse"]
    assert error["required"] == ["error"]
    detail_ref = error["properties"]["error"]["$ref"].rsplit("/", 1)[-1]
    assert set(components[detail_ref]["properties"]) == {"code", "message", "details"}


def test_swagger_ui_needs_no_cdn() -> None:
    response = Client().get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "cdn.jsdelivr.net" not in html and "unpkg.com" not in html


def _api_views(patterns: list, prefix: str = "") -> list[tuple[str, type]]:
    found = []
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            found.extend(_api_views(pattern.url_patterns, route))
        elif isinstance(pattern, URLPattern):
            view_class = getattr(pattern.callback, "cls", None)
            if route.startswith("api/") and view_class is not None:
                found.append((route, view_class))
    return found


def test_every_api_view_uses_the_platform_base_classes() -> None:
    """Rate limiting and the error shape come from SpineAPIMixin: no view may skip it."""
    views = _api_views(get_resolver().url_patterns)
    assert any("executions" in route for route, _ in views)
    offenders = [
        f"{route} → {view.__name__}"
        for route, view in views
        if not issubclass(view, SpineAPIMixin) and view.__module__ != "rest_framework.routers"
    ]
    assert offenders == []
