"""The execution runtime's environment variables."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from spine.config import load_config

pytestmark = [pytest.mark.embedded]


def test_defaults() -> None:
    config = load_config({})
    assert config.heartbeat_seconds == 10
    assert config.reap_after_seconds == 60
    assert config.sweep_after_seconds == 60
    assert config.lock_retry_seconds == 10
    assert config.time_limit_grace_seconds == 30
    assert config.failure_handler == "dlq.services.park"


def test_overrides() -> None:
    config = load_config(
        {
            "SPINE_HEARTBEAT_SECONDS": "2",
            "SPINE_REAP_AFTER_SECONDS": "9",
            "SPINE_SWEEP_AFTER_SECONDS": "5",
            "SPINE_LOCK_RETRY_SECONDS": "3",
            "SPINE_TIME_LIMIT_GRACE_SECONDS": "4",
            "SPINE_FAILURE_HANDLER": "pkg.mod.fn",
        }
    )
    assert (
        config.heartbeat_seconds,
        config.reap_after_seconds,
        config.sweep_after_seconds,
        config.lock_retry_seconds,
        config.time_limit_grace_seconds,
        config.failure_handler,
    ) == (2, 9, 5, 3, 4, "pkg.mod.fn")


@pytest.mark.parametrize(
    "name", ["SPINE_HEARTBEAT_SECONDS", "SPINE_REAP_AFTER_SECONDS", "SPINE_LOCK_RETRY_SECONDS"]
)
def test_bad_values_name_the_variable(name: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=name):
        load_config({name: "0"})
    with pytest.raises(ImproperlyConfigured, match=name):
        load_config({name: "soon"})


def test_sqlite_tests_use_a_file_beside_the_database(tmp_path) -> None:
    config = load_config({"DATABASE_URL": f"sqlite:///{tmp_path}/spine.sqlite3"})
    assert config.database["TEST"]["NAME"] == f"{tmp_path}/spine-test.sqlite3"
    memory = load_config({"DATABASE_URL": "sqlite:///:memory:"})
    assert "NAME" not in memory.database.get("TEST", {})


def test_system_checks_catch_timings_that_break_the_guarantees(settings) -> None:
    from executions.checks import execution_timings
    from executions.registry import Pipeline, PipelineParams, registry

    assert execution_timings() == []
    settings.SPINE_HEARTBEAT_SECONDS = 30
    settings.SPINE_REAP_AFTER_SECONDS = 45
    assert [e.id for e in execution_timings()] == ["executions.E001"]
    settings.SPINE_HEARTBEAT_SECONDS = 10
    long = Pipeline("test.too_long", lambda ctx: None, PipelineParams, "x", timeout_seconds=10**6)
    registry.register(long)
    try:
        assert [e.id for e in execution_timings()] == ["executions.E002"]
    finally:
        registry.unregister("test.too_long")
