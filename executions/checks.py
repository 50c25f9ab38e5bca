"""System checks for the execution runtime's timings (``manage.py check``)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, register

from executions.registry import registry


@register()
def execution_timings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    heartbeat = settings.SPINE_HEARTBEAT_SECONDS
    if settings.SPINE_REAP_AFTER_SECONDS < 2 * heartbeat:
        errors.append(
            Error(
                f"SPINE_REAP_AFTER_SECONDS={settings.SPINE_REAP_AFTER_SECONDS} is less than two "
                f"heartbeats (SPINE_HEARTBEAT_SECONDS={heartbeat}): live runs would be reaped.",
                id="executions.E001",
            )
        )
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout")
    grace = settings.SPINE_TIME_LIMIT_GRACE_SECONDS
    for pipeline in registry:
        hard_limit = pipeline.timeout_seconds + grace
        if pipeline.timeout_seconds > settings.SPINE_MAX_PIPELINE_TIMEOUT or (
            visibility is not None and hard_limit >= visibility
        ):
            errors.append(
                Error(
                    f"pipeline {pipeline.name}: timeout_seconds={pipeline.timeout_seconds} "
                    f"exceeds SPINE_MAX_PIPELINE_TIMEOUT or the broker's visibility timeout "
                    f"({visibility}s); Redis would redeliver it while it still runs.",
                    id="executions.E002",
                )
            )
    return errors
