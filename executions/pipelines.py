"""Diagnostic pipelines (``diag.*``) that exercise the execution machinery itself."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from rest_framework import serializers

from executions.fencing import fence
from executions.registry import (
    Pipeline,
    PipelineParams,
    PipelineRegistry,
    RetryPolicy,
    registry,
)
from executions.run_context import RunContext
from executions.services import record_events

# diag.sleep checks for cancellation this often while it sleeps.
SLEEP_STEP_SECONDS = 0.05
SLEEP_TIMEOUT_SECONDS = 3
# Long enough that a run paused past the reaper window is not killed by its limit.
WRITE_TIMEOUT_SECONDS = 600


class NoopParams(PipelineParams):
    pass


class SleepParams(PipelineParams):
    seconds = serializers.FloatField(min_value=0, max_value=3600, default=1.0)
    lock = serializers.CharField(
        required=False,
        default="",
        allow_blank=True,
        max_length=100,
        help_text="Runs with the same non-empty lock name never overlap.",
    )
    swallow = serializers.BooleanField(
        default=False,
        help_text="Catch every Exception while sleeping and return (a careless handler).",
    )


class WriteParams(PipelineParams):
    rows = serializers.IntegerField(min_value=1, max_value=10_000, default=10)
    steps = serializers.IntegerField(min_value=1, max_value=100, default=1)
    gate = serializers.IntegerField(
        min_value=0,
        default=0,
        help_text=(
            "PostgreSQL advisory lock each step's transaction waits for after writing "
            "(0: none); whoever holds it catches the run mid-write."
        ),
    )

    pause = serializers.FloatField(
        min_value=0,
        max_value=120,
        default=0,
        help_text="Seconds to wait between steps (stopping promptly when cancelled).",
    )


class FailParams(PipelineParams):
    message = serializers.CharField(default="diagnostic failure", max_length=500)


def noop(ctx: RunContext) -> dict[str, Any]:
    """Do nothing and succeed."""
    return {"ok": True}


def sleep(ctx: RunContext) -> dict[str, Any]:
    """Sleep for ``seconds``, stopping promptly when cancelled; with ``swallow``, catch
    any ``Exception`` (Celery's soft time limit is one) and return as if done."""
    seconds = ctx.params["seconds"]
    ctx.event("sleeping", seconds=seconds, run=str(ctx.run_token))
    try:
        _wait(ctx, seconds)
    except Exception as exc:
        if not ctx.params["swallow"]:
            raise
        return {"slept": seconds, "swallowed": type(exc).__name__}
    return {"slept": seconds}


def _wait(ctx: RunContext, seconds: float) -> None:
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        ctx.raise_if_cancelled()
        time.sleep(min(SLEEP_STEP_SECONDS, left))


def write(ctx: RunContext) -> dict[str, Any]:
    """Append ``rows`` ``written`` events per step, each step one fenced transaction
    (the ledger's own table stands in for a pipeline's data)."""
    run = str(ctx.run_token)
    for step in range(ctx.params["steps"]):
        if step:
            _wait(ctx, ctx.params["pause"])
        ctx.event("step_started", step=step, run=run)
        with transaction.atomic():
            record_events(
                ctx.execution,
                [
                    ("written", {"step": step, "row": row, "run": run})
                    for row in range(ctx.params["rows"])
                ],
            )
            if ctx.params["gate"] and connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_xact_lock_shared(%s)", [ctx.params["gate"]])
            fence()
    return {"rows": ctx.params["rows"] * ctx.params["steps"], "run": run}


def fail(ctx: RunContext) -> dict[str, Any]:
    """Raise with ``message``."""
    raise RuntimeError(ctx.params["message"])


def _sleep_lock(params: dict[str, Any]) -> str | None:
    return f"diag:sleep:{params['lock']}" if params.get("lock") else None


DIAGNOSTIC_PIPELINES = (
    Pipeline(
        name="diag.noop",
        handler=noop,
        params=NoopParams,
        description="Do nothing and succeed (dispatch overhead, smoke tests).",
        lane="default",
        timeout_seconds=30,
    ),
    Pipeline(
        name="diag.sleep",
        handler=sleep,
        params=SleepParams,
        description="Sleep for a number of seconds; optional lock name.",
        lane="default",
        timeout_seconds=SLEEP_TIMEOUT_SECONDS,
        lock_key=_sleep_lock,
        lock_policy="wait",
        retry=RetryPolicy(max_retries=1, backoff_seconds=1, backoff_max_seconds=5),
        # One requeue when its worker is lost, so recovery can be seen end to end.
        max_requeues=1,
    ),
    Pipeline(
        name="diag.write",
        handler=write,
        params=WriteParams,
        description="Write rows in fenced steps (a run that lost its claim commits none).",
        lane="default",
        timeout_seconds=WRITE_TIMEOUT_SECONDS,
        retry=RetryPolicy(max_retries=1, backoff_seconds=1, backoff_max_seconds=5),
        max_requeues=1,
    ),
    Pipeline(
        name="diag.fail",
        handler=fail,
        params=FailParams,
        description="Raise an error with the given message.",
        lane="default",
        timeout_seconds=30,
    ),
)


def register_diagnostic_pipelines(target: PipelineRegistry = registry) -> None:
    """Register the diagnostic pipelines (idempotent)."""
    for pipeline in DIAGNOSTIC_PIPELINES:
        target.register(pipeline)


if settings.SPINE_DIAGNOSTIC_PIPELINES:
    register_diagnostic_pipelines()
