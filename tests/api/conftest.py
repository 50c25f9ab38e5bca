"""Fixtures for the API tests: users with and without permissions, tokens, clients,
a registered test pipeline, and a rate-limit counter namespace of each test's own."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from django.contrib.auth.models import Permission, User
from rest_framework import serializers
from rest_framework.test import APIClient

from executions.registry import Pipeline, PipelineParams, RetryPolicy, registry
from spine.api.tokens import issue_token

TEST_PIPELINE = "api_test.echo"


@pytest.fixture(autouse=True)
def _ratelimit_namespace(settings: pytest.FixtureRequest) -> str:
    """Each test counts in its own rate-limit keys: no test spends another's budget,
    and nothing is flushed in the shared Redis."""
    prefix = f"rl:test:{uuid.uuid4().hex}:"
    settings.RATELIMIT_CACHE_PREFIX = prefix  # type: ignore[attr-defined]
    return prefix


def make_user(username: str, *perms: str) -> User:
    user = User.objects.create_user(username=username, password="not-used-pw-123")
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return User.objects.get(pk=user.pk)  # fresh: no stale permission cache


def token_client(user: User) -> APIClient:
    client = APIClient()
    token, _ = issue_token(user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def reader(db: None) -> User:
    """Signed in, may read (executions too: ``view_execution``), may not write."""
    return make_user("reader", "executions.view_execution")


@pytest.fixture
def stranger(db: None) -> User:
    """Signed in, no model permissions: may read the OTC analytics only."""
    return make_user("stranger")


@pytest.fixture
def operator(db: None) -> User:
    """May watch, submit and cancel executions."""
    return make_user(
        "operator",
        "executions.view_execution",
        "executions.add_execution",
        "executions.cancel_execution",
    )


@pytest.fixture
def reader_client(reader: User) -> APIClient:
    return token_client(reader)


@pytest.fixture
def stranger_client(stranger: User) -> APIClient:
    return token_client(stranger)


@pytest.fixture
def operator_client(operator: User) -> APIClient:
    return token_client(operator)


@pytest.fixture
def anon_client() -> APIClient:
    return APIClient()


class EchoParams(PipelineParams):
    week = serializers.DateField(help_text="Any date in the week.")
    tier = serializers.ChoiceField(choices=["T1", "T2", "OTC"], default="T1")


def _echo(ctx: object) -> dict[str, object]:
    """Echo its params (API tests)."""
    return {"ok": True}


@pytest.fixture
def test_pipeline() -> Iterator[Pipeline]:
    """A pipeline registered for the test's duration (and removed after)."""
    pipeline = registry.register(
        Pipeline(
            name=TEST_PIPELINE,
            handler=_echo,
            params=EchoParams,
            description="Echo its params (API tests).",
            lane="default",
            timeout_seconds=60,
            lock_key="api_test:{tier}:{week}",
            retry=RetryPolicy(max_retries=2),
        )
    )
    yield pipeline
    registry.unregister(TEST_PIPELINE)


def assert_error(response: object, status: int, code: str) -> dict[str, object]:
    """The response is the standard error body with this status and code."""
    assert response.status_code == status, (response.status_code, _body(response))  # type: ignore[attr-defined]
    body = _body(response)
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)
    return body["error"]


def _body(response: object) -> dict:
    import json

    return json.loads(response.content)  # type: ignore[attr-defined]


ClientFactory = Callable[[User], APIClient]


@pytest.fixture
def client_for() -> ClientFactory:
    return token_client
