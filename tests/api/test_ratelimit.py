"""Rate limiting: per-user (or per-address) read and write budgets in the shared cache.

Most tests run against the real Redis (``REDIS_URL``), each in its own key namespace
(see the conftest); rates are per hour or day so no window boundary falls inside a
test. A budget is shared by every client of one user — another token client, a
session, and a separate OS process talking to the same Redis.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from spine.api import ratelimit
from spine.metrics import RATELIMIT_REJECTIONS, RATELIMIT_STORE_ERRORS
from tests.api.conftest import assert_error, token_client

READ_PATH = "/api/v1/pipelines/"
#: What SPINE_PUBLIC_READ opens to anonymous clients: the OTC analytics.
PUBLIC_READ_PATH = "/api/v1/otc/weeks/"
WRITE_PATH = "/api/v1/executions/"
DEAD_REDIS_CACHE = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/4",
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }
}


@pytest.fixture
def real_redis(settings) -> None:
    """These tests are about the shared store: they need the real Redis."""
    assert settings.REDIS_URL, "set REDIS_URL: rate-limit tests run against real Redis"
    assert settings.CACHES["default"]["BACKEND"].endswith("RedisCache")


def headers(response) -> tuple[int, int, int]:
    return (
        int(response["X-RateLimit-Limit"]),
        int(response["X-RateLimit-Remaining"]),
        int(response["X-RateLimit-Reset"]),
    )


def rejections(budget: str) -> float:
    return RATELIMIT_REJECTIONS.labels(budget=budget)._value.get()


@pytest.mark.django_db
def test_headers_on_every_limited_response(real_redis, settings, reader_client) -> None:
    settings.SPINE_RATELIMIT_READ = "5/h"
    seen = [headers(reader_client.get(READ_PATH)) for _ in range(3)]
    assert [(limit, remaining) for limit, remaining, _ in seen] == [(5, 4), (5, 3), (5, 2)]
    assert all(0 < reset <= 3600 for _, _, reset in seen)


@pytest.mark.django_db
def test_over_budget_is_429_with_retry_after(real_redis, settings, reader_client) -> None:
    settings.SPINE_RATELIMIT_READ = "3/h"
    before = rejections("read")
    for _ in range(3):
        assert reader_client.get(READ_PATH).status_code == 200
    response = reader_client.get(READ_PATH)
    error = assert_error(response, 429, "rate_limited")
    limit, remaining, reset = headers(response)
    assert (limit, remaining) == (3, 0)
    assert int(response["Retry-After"]) == reset
    assert 0 < reset <= 3600
    assert error["details"] == {"budget": "read", "limit": 3, "retry_after_seconds": reset}
    assert rejections("read") == before + 1
    # Refused requests are errors with headers too, and keep being refused.
    assert reader_client.get("/api/v1/executions/").status_code == 429


@pytest.mark.django_db
def test_rejections_are_exported(real_redis, settings, reader_client) -> None:
    settings.SPINE_RATELIMIT_READ = "1/h"
    reader_client.get(READ_PATH)
    assert reader_client.get(READ_PATH).status_code == 429
    text = Client().get("/metrics").content.decode()
    assert 'spine_ratelimit_rejections_total{budget="read"}' in text


@pytest.mark.django_db
def test_reads_and_writes_have_separate_budgets(real_redis, settings, operator_client) -> None:
    settings.SPINE_RATELIMIT_READ = "2/h"
    settings.SPINE_RATELIMIT_WRITE = "1/h"
    operator_client.get(READ_PATH)
    operator_client.get(READ_PATH)
    assert operator_client.get(READ_PATH).status_code == 429
    # An invalid submission still spends the write budget, untouched by the reads.
    first = operator_client.post(WRITE_PATH, {}, format="json")
    assert first.status_code == 400
    assert headers(first)[:2] == (1, 0)
    second = operator_client.post(WRITE_PATH, {}, format="json")
    assert_error(second, 429, "rate_limited")
    assert json.loads(second.content)["error"]["details"]["budget"] == "write"


@pytest.mark.django_db
def test_token_and_session_of_one_user_share_the_budget(real_redis, settings, reader) -> None:
    settings.SPINE_RATELIMIT_READ = "4/h"
    by_token = token_client(reader)
    by_session = APIClient()
    by_session.force_login(reader)
    assert headers(by_token.get(READ_PATH))[1] == 3
    assert headers(by_session.get(READ_PATH))[1] == 2
    assert headers(by_token.get(READ_PATH))[1] == 1
    assert headers(by_session.get(READ_PATH))[1] == 0
    assert by_token.get(READ_PATH).status_code == 429
    assert by_session.get(READ_PATH).status_code == 429


@pytest.mark.django_db
def test_users_have_their_own_budgets(real_redis, settings, reader_client, operator_client) -> None:
    settings.SPINE_RATELIMIT_READ = "1/h"
    assert reader_client.get(READ_PATH).status_code == 200
    assert reader_client.get(READ_PATH).status_code == 429
    assert operator_client.get(READ_PATH).status_code == 200


@pytest.mark.django_db
def test_anonymous_clients_are_limited_per_address(real_redis, settings) -> None:
    settings.SPINE_PUBLIC_READ = True
    settings.SPINE_RATELIMIT_READ = "2/h"
    first = APIClient(REMOTE_ADDR="198.51.100.1")
    second = APIClient(REMOTE_ADDR="198.51.100.1")
    other = APIClient(REMOTE_ADDR="198.51.100.2")
    assert first.get(PUBLIC_READ_PATH).status_code == 200
    assert second.get(PUBLIC_READ_PATH).status_code == 200
    assert first.get(PUBLIC_READ_PATH).status_code == 429
    assert second.get(PUBLIC_READ_PATH).status_code == 429
    assert other.get(PUBLIC_READ_PATH).status_code == 200


@pytest.mark.django_db
def test_bad_credentials_spend_the_address_budget(real_redis, settings) -> None:
    settings.SPINE_RATELIMIT_READ = "2/h"
    guesser = APIClient(REMOTE_ADDR="198.51.100.9")
    guesser.credentials(HTTP_AUTHORIZATION="Token guess")
    assert guesser.get(READ_PATH).status_code == 401
    assert headers(guesser.get(READ_PATH))[1] == 0
    assert_error(guesser.get(READ_PATH), 429, "rate_limited")


@pytest.mark.django_db
def test_schema_is_limited_as_a_read(real_redis, settings) -> None:
    settings.SPINE_RATELIMIT_READ = "1/h"
    client = APIClient(REMOTE_ADDR="198.51.100.20")
    assert client.get("/api/schema/").status_code == 200
    assert client.get("/api/schema/").status_code == 429


@pytest.mark.django_db(transaction=True)
def test_a_separate_process_shares_the_budget(
    real_redis, settings, reader, _ratelimit_namespace: str
) -> None:
    """Two OS processes (two web workers) count in the same Redis budget."""
    if connection.vendor != "postgresql":
        pytest.skip("the second process needs a database server it can reach")
    settings.SPINE_RATELIMIT_READ = "3/h"
    client = token_client(reader)  # committed: transactional test, visible to the child
    token = client._credentials["HTTP_AUTHORIZATION"]
    assert headers(client.get(READ_PATH))[1] == 2

    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        "SPINE_RATELIMIT_READ": "3/h",
        "LOG_LEVEL": "ERROR",
    }
    script = textwrap.dedent(
        f"""
        import django, json, os
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spine.settings")
        django.setup()
        from django.conf import settings
        settings.RATELIMIT_CACHE_PREFIX = {_ratelimit_namespace!r}
        from django.test import Client
        client = Client(HTTP_AUTHORIZATION={token!r})
        out = []
        for _ in range(2):
            r = client.get({READ_PATH!r})
            out.append([r.status_code, r.get("X-RateLimit-Remaining")])
        print(json.dumps(out))
        """
    )
    child = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert child.returncode == 0, child.stderr
    assert json.loads(child.stdout.strip().splitlines()[-1]) == [[200, "1"], [200, "0"]]
    # Back in this process: the budget the child spent is gone here too.
    assert_error(client.get(READ_PATH), 429, "rate_limited")


@pytest.mark.embedded
@pytest.mark.django_db
def test_fails_open_when_the_counter_store_is_down(settings, reader_client) -> None:
    settings.CACHES = DEAD_REDIS_CACHE
    settings.SPINE_RATELIMIT_READ = "1/h"
    before = RATELIMIT_STORE_ERRORS.labels(budget="read")._value.get()
    for _ in range(3):
        response = reader_client.get(READ_PATH)
        assert response.status_code == 200
        assert "X-RateLimit-Limit" not in response
    assert RATELIMIT_STORE_ERRORS.labels(budget="read")._value.get() == before + 3


@pytest.mark.embedded
@pytest.mark.django_db
def test_fail_closed_is_a_setting_away(settings, reader_client) -> None:
    settings.CACHES = DEAD_REDIS_CACHE
    settings.SPINE_RATELIMIT_FAIL_OPEN = False
    settings.SPINE_RATELIMIT_READ = "10/m"
    response = reader_client.get(READ_PATH)
    assert_error(response, 429, "rate_limited")
    assert response["Retry-After"] == "60"


@pytest.mark.embedded
@pytest.mark.django_db
def test_can_be_switched_off(settings, reader_client) -> None:
    settings.SPINE_RATELIMIT_ENABLED = False
    settings.SPINE_RATELIMIT_READ = "1/h"
    for _ in range(3):
        response = reader_client.get(READ_PATH)
        assert response.status_code == 200
        assert "X-RateLimit-Limit" not in response


@pytest.mark.embedded
@pytest.mark.django_db
def test_embedded_default_limits_in_local_memory(settings, reader_client) -> None:
    """Whatever the cache is (local memory on the embedded default), limits hold."""
    settings.SPINE_RATELIMIT_READ = "2/h"
    assert reader_client.get(READ_PATH).status_code == 200
    assert reader_client.get(READ_PATH).status_code == 200
    assert reader_client.get(READ_PATH).status_code == 429


@pytest.mark.embedded
@pytest.mark.parametrize(
    ("rate", "parts"),
    [("600/m", (600, 60)), ("10/5s", (10, 5)), ("3/h", (3, 3600)), ("7/2d", (7, 172800))],
)
def test_rate_parts(rate: str, parts: tuple[int, int]) -> None:
    assert ratelimit.rate_parts(rate) == parts


@pytest.mark.embedded
@pytest.mark.parametrize(
    ("method", "budget"),
    [
        ("GET", "read"),
        ("HEAD", "read"),
        ("OPTIONS", "read"),
        ("POST", "write"),
        ("DELETE", "write"),
    ],
)
def test_budget_for(method: str, budget: str) -> None:
    assert ratelimit.budget_for(method) == budget
