"""The runner: the single processing point (invariant 2), the only caller of handlers."""

from __future__ import annotations

import json
import logging
import time
import traceback
import uuid
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction

from executions import fencing, metrics
from executions.claim import claim
from executions.dispatcher import Dispatcher, default_dispatcher
from executions.interrupts import (
    ExecutionCancelled,
    ExecutionInterrupted,
    PipelineTimeout,
    RunFenced,
    soft_time_limit_fired,
)
from executions.locks import release_lock
from executions.models import Execution, ExecutionStatus
from executions.registry import Pipeline
from executions.run_context import RunContext
from executions.services import IllegalTransition, hand_off_failure, record_event, transition
from executions.supervisor import supervisor
from spine import context
from spine.text import bounded

logger = logging.getLogger(__name__)

__all__ = [
    "ExecutionCancelled",
    "PipelineTimeout",
    "RunContext",
    "run_pipeline",
]


@dataclass
class Outcome:
    """What the handler call came to, before it is written to the ledger.

    ``error`` and ``traceback`` are bounded here, so the ledger, the dead letter and
    the log line all carry the same capped text.
    """

    status: str
    result: dict[str, Any] | None = None
    error: str = ""
    traceback: str = ""
    reraise: BaseException | None = None

    def __post_init__(self) -> None:
        self.error = bounded(self.error)
        self.traceback = bounded(self.traceback)


def run_pipeline(
    execution_id: uuid.UUID | str,
    *,
    enforce_timeout: bool = True,
    dispatcher: Dispatcher = default_dispatcher,
) -> None:
    """Run one execution if it is runnable; record everything in its ledger.

    ``enforce_timeout=False`` leaves the time limit to the caller (the Celery task,
    whose soft and hard limits come with the message). ``dispatcher`` resubmits an
    execution whose lock key is busy.
    """
    with context.bind(execution_id=str(execution_id)):
        claimed = claim(execution_id, dispatcher=dispatcher)
        if claimed is None:
            return
        execution, pipeline, run_token = claimed
        with context.bind(request_id=execution.request_id or None):
            _run(execution, pipeline, run_token, enforce_timeout)


# --- running --------------------------------------------------------------------------


def _run(
    execution: Execution, pipeline: Pipeline, run_token: uuid.UUID, enforce_timeout: bool
) -> None:
    started = time.monotonic()
    ctx = RunContext(execution, pipeline, run_token, deadline=started + pipeline.timeout_seconds)
    logger.info("execution started: %s", pipeline.name, extra={"pipeline": pipeline.name})
    watch = supervisor().watch(
        ctx,
        heartbeat_seconds=settings.SPINE_HEARTBEAT_SECONDS,
        enforce_timeout=enforce_timeout,
        grace_seconds=settings.SPINE_TIME_LIMIT_GRACE_SECONDS,
        on_abandon=_record_abandoned,
    )
    try:
        outcome = _call_handler(ctx)
    finally:
        watch.stop()
    _finish(ctx, outcome, time.monotonic() - started)
    if outcome.reraise is not None:
        raise outcome.reraise


def _call_handler(ctx: RunContext) -> Outcome:
    limit = ctx.pipeline.timeout_seconds
    try:
        ctx.params = ctx.pipeline.load(ctx.execution.params)
        with fencing.bind(ctx), ctx.handler_running():
            result = ctx.pipeline.handler(ctx)
        if soft_time_limit_fired() or time.monotonic() > ctx.deadline:
            # Celery's soft limit is an ordinary Exception a handler can catch and
            # return from; returning past the limit is still running past it.
            return Outcome(
                ExecutionStatus.TIMED_OUT,
                error=f"timed out: exceeded its time limit of {limit}s (returned after it)",
            )
        return Outcome(ExecutionStatus.SUCCEEDED, result=_json_result(result))
    except ExecutionInterrupted as exc:
        if exc.execution_id and exc.execution_id != str(ctx.execution_id):
            # A nested in-process run caught its parent's interrupt: stop, then pass it up.
            error = f"interrupted: {exc.reason} (execution {exc.execution_id})"
            return Outcome(ExecutionStatus.FAILED, error=error, reraise=exc)
        if isinstance(exc, PipelineTimeout):
            return Outcome(ExecutionStatus.TIMED_OUT, error=f"timed out: {exc.reason}")
        if isinstance(exc, RunFenced):
            return Outcome(ExecutionStatus.CANCELLED, error=f"fenced: {exc.reason}")
        return Outcome(ExecutionStatus.CANCELLED, error=f"stopped: {exc.reason}")
    except SoftTimeLimitExceeded:
        return Outcome(
            ExecutionStatus.TIMED_OUT, error=f"timed out: exceeded its time limit of {limit}s"
        )
    except Exception as exc:
        return Outcome(
            ExecutionStatus.FAILED,
            error=f"{type(exc).__name__}: {exc}",
            traceback=traceback.format_exc(),
        )


def _json_result(result: Any) -> dict[str, Any] | None:
    if result is None:
        return None
    if not isinstance(result, dict):
        raise TypeError(f"handler returned {type(result).__name__}; expected a dict or None")
    return json.loads(json.dumps(result, cls=DjangoJSONEncoder))


# --- recording ------------------------------------------------------------------------

_FAILURE_KIND = {ExecutionStatus.FAILED: "error", ExecutionStatus.TIMED_OUT: "timeout"}


def _finish(ctx: RunContext, outcome: Outcome, elapsed: float) -> None:
    execution = ctx.execution
    data: dict[str, Any] = {"duration_seconds": round(elapsed, 3)}
    if outcome.error:
        data["error"] = outcome.error
    if outcome.status == ExecutionStatus.TIMED_OUT:
        data["limit_seconds"] = ctx.pipeline.timeout_seconds
    holds_lock = bool(execution.lock_key)
    try:
        # The lock goes with the outcome in one transaction; without one, the
        # transition is a single statement on its own.
        with transaction.atomic() if holds_lock else nullcontext():
            transition(
                execution,
                outcome.status,
                data=data,
                expect={"run_token": ctx.run_token},
                result=outcome.result,
                error=outcome.error,
                traceback=outcome.traceback,
            )
            if holds_lock:
                release_lock(execution, ctx.run_token)
    except IllegalTransition:
        # Cancelled, reaped or abandoned meanwhile: the ledger already says how it
        # ended; the handler's outcome is only noted.
        stopped = outcome.status == ExecutionStatus.CANCELLED
        if ctx.fenced:
            event_type = "fenced"
            data["error"] = f"fenced: {ctx.fenced}; this run's write was rolled back"
            data["run"] = str(ctx.run_token)
            logger.warning("execution %s: %s", execution.pk, data["error"])
        else:
            event_type = "handler_stopped" if stopped else "late_result"
        with transaction.atomic() if holds_lock else nullcontext():
            record_event(execution, event_type, {"outcome": outcome.status, **data})
            if holds_lock:
                release_lock(execution, ctx.run_token)
        logger.info("execution %s ended elsewhere; outcome %s noted", execution.pk, outcome.status)
        return
    metrics.FINISHED.labels(pipeline=execution.pipeline, status=outcome.status).inc()
    metrics.DURATION.labels(pipeline=execution.pipeline).observe(elapsed)
    log = logger.warning if outcome.status in _FAILURE_KIND else logger.info
    log(
        "execution %s: %s",
        outcome.status,
        outcome.error or execution.pipeline,
        extra={"pipeline": execution.pipeline, "status": outcome.status, "duration": elapsed},
    )
    kind = _FAILURE_KIND.get(outcome.status)
    if kind:
        hand_off_failure(execution, kind)


def _record_abandoned(ctx: RunContext) -> None:
    """The handler ignored its time limit: record ``timed_out`` without waiting for it."""
    limit = ctx.pipeline.timeout_seconds
    error = (
        f"timed out: exceeded its time limit of {limit}s and did not stop within "
        f"{settings.SPINE_TIME_LIMIT_GRACE_SECONDS}s"
    )
    try:
        execution = transition(
            Execution.objects.get(pk=ctx.execution_id),
            ExecutionStatus.TIMED_OUT,
            data={"error": error, "limit_seconds": limit, "abandoned": True},
            expect={"run_token": ctx.run_token},
            error=error,
        )
    except IllegalTransition:
        return
    metrics.FINISHED.labels(pipeline=execution.pipeline, status=ExecutionStatus.TIMED_OUT).inc()
    hand_off_failure(execution, "timeout")
