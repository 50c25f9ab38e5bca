"""Reads need a signed-in client unless public read is on (OTC analytics only);
executions need ``view_execution`` to read; writes need model permissions."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from rest_framework.test import APIClient, APIRequestFactory

from spine.api.permissions import SpineAPIPermission
from tests.api.conftest import assert_error

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]


def test_reads_need_authentication(anon_client: APIClient) -> None:
    for path in ("/api/v1/executions/", "/api/v1/pipelines/"):
        assert_error(anon_client.get(path), 401, "not_authenticated")


def test_public_read_opens_the_otc_analytics_only(settings, anon_client: APIClient) -> None:
    settings.SPINE_PUBLIC_READ = True
    assert anon_client.get("/api/v1/otc/weeks/").status_code == 200
    assert anon_client.get("/api/v1/otc/captures/").status_code == 200
    for path in ("/api/v1/executions/", "/api/v1/pipelines/", "/api/v1/dlq/"):
        assert_error(anon_client.get(path), 401, "not_authenticated")


def test_public_read_never_opens_writes(settings, anon_client: APIClient) -> None:
    settings.SPINE_PUBLIC_READ = True
    response = anon_client.post("/api/v1/executions/", {"pipeline": "x"}, format="json")
    assert_error(response, 401, "not_authenticated")


def test_token_reader_can_read(reader_client: APIClient) -> None:
    assert reader_client.get("/api/v1/executions/").status_code == 200


def test_session_login_can_read(reader) -> None:
    client = APIClient()
    client.force_login(reader)
    assert client.get("/api/v1/pipelines/").status_code == 200


def test_submit_needs_add_execution(reader_client: APIClient) -> None:
    response = reader_client.post("/api/v1/executions/", {"pipeline": "x"}, format="json")
    error = assert_error(response, 403, "permission_denied")
    assert "executions.add_execution" in error["message"]


def test_session_user_without_permission_gets_403(reader) -> None:
    client = APIClient()
    client.force_login(reader)
    response = client.post("/api/v1/executions/", {"pipeline": "x"}, format="json")
    assert_error(response, 403, "permission_denied")


def test_unsafe_action_without_declared_permissions_fails_loudly() -> None:
    class Undeclared:
        action = "destroy"
        action_permissions: dict = {}

        def delete(self) -> None: ...

    request = APIRequestFactory().delete("/api/v1/x/")
    request.user = None
    from rest_framework.request import Request

    with pytest.raises(ImproperlyConfigured, match="declares no action_permissions"):
        SpineAPIPermission().has_permission(Request(request), Undeclared())
