"""Liveness and readiness: ok, degraded (Redis down), down (database unreachable or
migrations missing), extra checks and detail providers, never rate limited."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connections
from django.db.utils import load_backend
from django.test import Client

from spine import health

pytestmark = pytest.mark.django_db

DEAD_REDIS = "redis://127.0.0.1:1/4"


def get_json(path: str) -> tuple[int, dict]:
    response = Client().get(path)
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"
    return response.status_code, json.loads(response.content)


def _install_connection(alias: str, settings_dict: dict) -> None:
    """A dynamically created connection (not in DATABASES): health checks reach it
    through ``connections[alias]`` like any other, and really try to connect."""
    wrapper = load_backend(settings_dict["ENGINE"]).DatabaseWrapper(settings_dict, alias)
    connections[alias] = wrapper


def _remove_connection(alias: str) -> None:
    try:
        connections[alias].close()
    finally:
        del connections[alias]


@pytest.fixture
def dead_database(settings) -> Iterator[str]:
    """A second connection to a database that does not answer: the real connect path."""
    alias = "health_dead"
    config = copy.deepcopy(connections["default"].settings_dict)
    if config["ENGINE"].endswith("sqlite3"):
        config["NAME"] = "/nonexistent-directory/spine.sqlite3"
    else:
        config.update(HOST="127.0.0.1", PORT=1)
        config["OPTIONS"] = {**config.get("OPTIONS", {}), "connect_timeout": 2}
    config["CONN_MAX_AGE"] = 0
    _install_connection(alias, config)
    settings.SPINE_HEALTH_DATABASE = alias
    yield alias
    _remove_connection(alias)


@pytest.fixture
def unmigrated_database(settings, tmp_path: Path) -> Iterator[str]:
    """A reachable but empty database: every migration is pending."""
    alias = "health_empty"
    config = copy.deepcopy(connections["default"].settings_dict)
    config.update(
        ENGINE="django.db.backends.sqlite3",
        NAME=str(tmp_path / "empty.sqlite3"),
        OPTIONS={},
        CONN_MAX_AGE=0,
        TEST={"NAME": None},
    )
    _install_connection(alias, config)
    settings.SPINE_HEALTH_DATABASE = alias
    yield alias
    _remove_connection(alias)


@pytest.mark.embedded
def test_live_touches_nothing(dead_database: str, settings) -> None:
    settings.REDIS_URL = DEAD_REDIS
    status, body = get_json("/health/live")
    assert status == 200
    assert body["status"] == "ok"
    assert body["checked_at"].endswith("Z")


@pytest.mark.embedded
def test_ready_ok() -> None:
    status, body = get_json("/health/ready")
    assert status == 200, body
    assert body["status"] == "ok"
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["migrations"]["status"] == "ok"
    for check in body["checks"].values():
        assert isinstance(check["latency_ms"], int | float) and check["latency_ms"] >= 0
        assert isinstance(check["detail"], str)


@pytest.mark.embedded
def test_ready_without_redis_configured_skips_it(settings) -> None:
    settings.REDIS_URL = None
    status, body = get_json("/health/ready/")
    assert status == 200
    assert body["status"] == "ok"
    assert body["checks"]["redis"]["status"] == "skipped"


def test_ready_pings_configured_redis(settings) -> None:
    assert settings.REDIS_URL, "runs against the real Redis"
    _, body = get_json("/health/ready")
    assert body["checks"]["redis"] == {**body["checks"]["redis"], "status": "ok", "detail": "PONG"}


@pytest.mark.embedded
def test_redis_down_database_up_is_degraded(settings) -> None:
    settings.REDIS_URL = DEAD_REDIS
    status, body = get_json("/health/ready")
    assert status == 200
    assert body["status"] == "degraded"
    redis = body["checks"]["redis"]
    assert redis["status"] == "fail"
    assert redis["critical"] is False
    assert "ConnectionError" in redis["detail"]
    assert body["checks"]["database"]["status"] == "ok"


@pytest.mark.embedded
def test_database_unreachable_is_down(dead_database: str) -> None:
    status, body = get_json("/health/ready")
    assert status == 503
    assert body["status"] == "down"
    database = body["checks"]["database"]
    assert database["status"] == "fail"
    assert database["critical"] is True
    assert "OperationalError" in database["detail"]
    assert body["checks"]["migrations"]["status"] == "skipped"


@pytest.mark.embedded
def test_unapplied_migrations_is_down(unmigrated_database: str) -> None:
    status, body = get_json("/health/ready")
    assert status == 503
    assert body["status"] == "down"
    assert body["checks"]["database"]["status"] == "ok"
    migrations = body["checks"]["migrations"]
    assert migrations["status"] == "fail"
    assert "executions.0001_initial" in migrations["pending"]


@pytest.mark.embedded
def test_detail_providers_are_informational() -> None:
    # Not "finra_breaker": unregistering that would remove the otc app's real provider.
    health.register_detail_provider("example_breaker", lambda: {"state": "open", "failures": 5})
    health.register_detail_provider("broken", lambda: 1 / 0)
    try:
        status, body = get_json("/health/ready")
    finally:
        health.unregister("example_breaker")
        health.unregister("broken")
    assert status == 200
    assert body["details"]["example_breaker"] == {"state": "open", "failures": 5}
    assert body["details"]["broken"] == {"error": "ZeroDivisionError: division by zero"}
    assert body["status"] != "down"


@pytest.mark.embedded
def test_extra_non_critical_check_degrades() -> None:
    health.register_check(
        "disk", lambda: health.CheckOutcome("fail", "95% full", {"free_gb": 1}), critical=False
    )
    try:
        status, body = get_json("/health/ready")
    finally:
        health.unregister("disk")
    assert status == 200
    assert body["status"] == "degraded"
    assert body["checks"]["disk"]["free_gb"] == 1


@pytest.mark.embedded
def test_health_is_never_rate_limited(settings) -> None:
    settings.SPINE_RATELIMIT_READ = "1/d"
    client = Client()
    for _ in range(4):
        for path in ("/health/live", "/health/ready"):
            response = client.get(path)
            assert response.status_code == 200
            assert "X-RateLimit-Limit" not in response


@pytest.mark.embedded
def test_head_is_allowed() -> None:
    assert Client().head("/health/live").status_code == 200


@pytest.mark.embedded
def test_ready_reports_queued_executions_waiting_past_the_lost_message_threshold(
    settings,
) -> None:
    from datetime import timedelta

    from executions.dispatcher import dispatch
    from executions.models import Execution
    from spine.time import utc_now

    settings.EXECUTION_BACKEND = "stub"
    settings.SPINE_SWEEP_LOST_AFTER_SECONDS = 180
    stale = dispatch("ops.sweep", trigger_source="api")
    dispatch("ops.sweep", trigger_source="api")  # fresh: not counted
    Execution.objects.filter(pk=stale.pk).update(queued_at=utc_now() - timedelta(seconds=200))
    status, body = get_json("/health/ready")
    assert status == 200 and body["status"] == "ok", "informational, never a failure"
    assert body["details"]["executions"] == {"stale_queued": 1, "stale_after_seconds": 180}
