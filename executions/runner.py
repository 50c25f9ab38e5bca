"""The runner: the single processing point (invariant 2), the only caller of handlers.

``run_pipeline(execution_id)`` is what every backend ends in. It is idempotent: a
message for an execution that is already running, finished or cancelled records a
``delivery_ignored`` event and does nothing else, so broker redeliveries and sweeper
duplicates are harmless. For a runnable execution it

1. claims it in one transaction: takes the pipeline's lock key if it declares one
   (a busy key means "wait and be resubmitted later" or "fail: locked by <id>", per
   the pipeline's ``lock_policy``), then marks it running under a fresh run token;
2. calls the handler with a :class:`RunContext`, beside a supervisor thread that
   beats the heartbeat, passes on cancellation and enforces the time limit;
3. records the outcome (succeeded with the result, failed with error and traceback,
   timed_out with the limit, or cancelled) only if the run still owns the execution,
   releases the lock, and hands failures to the dead-letter queue.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import traceback
import uuid
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction

from executions import ledger_sql, metrics
from executions.interrupts import ExecutionCancelled, ExecutionInterrupted, PipelineTimeout
from executions.locks import acquire_lock, release_lock
from executions.models import Execution, ExecutionStatus
from executions.registry import Pipeline, UnknownPipeline, registry
from executions.run_context import RunContext
from executions.services import IllegalTransition, hand_off_failure, record_event, transition
from executions.supervisor import supervisor
from spine import context
from spine.time import format_iso, utc_now

logger = logging.getLogger(__name__)

__all__ = [
    "ExecutionCancelled",
    "PipelineTimeout",
    "RunContext",
    "run_pipeline",
]

# A delivery this early for an execution told to wait is a stray duplicate.
EARLY_TOLERANCE = timedelta(seconds=1)
# Lock waits back off from SPINE_LOCK_RETRY_SECONDS up to this many times that.
LOCK_BACKOFF_CAP = 32


@dataclass
class Outcome:
    """What the handler call came to, before it is written to the ledger."""

    status: str
    result: dict[str, Any] | None = None
    error: str = ""
    traceback: str = ""
    reraise: BaseException | None = None


def run_pipeline(execution_id: uuid.UUID | str, *, enforce_timeout: bool = True) -> None:
    """Run one execution if it is runnable; record everything in its ledger.

    ``enforce_timeout=False`` leaves the time limit to the caller (the Celery task,
    whose soft and hard limits come with the message).
    """
    with context.bind(execution_id=str(execution_id)):
        claimed = _claim(execution_id)
        if claimed is None:
            return
        execution, pipeline, run_token = claimed
        with context.bind(request_id=execution.request_id or None):
            _run(execution, pipeline, run_token, enforce_timeout)


# --- claiming -------------------------------------------------------------------------


def _claim(execution_id: uuid.UUID | str) -> tuple[Execution, Pipeline, uuid.UUID] | None:
    try:
        pk = uuid.UUID(str(execution_id))
    except ValueError:
        logger.error("refusing to run %r: not an execution id", execution_id)
        return None
    if ledger_sql.available():
        run_token = uuid.uuid4()
        started = ledger_sql.claim_queued(
            pk,
            run_token=run_token,
            now=utc_now(),
            due_by=utc_now() + EARLY_TOLERANCE,
            data=_started_data(run_token, lock_key=None),
        )
        if started is not None:
            return _registered(started, run_token)
    execution = Execution.objects.filter(pk=pk).first()
    if execution is None:
        logger.warning("execution %s does not exist; message dropped", pk)
        return None
    if not execution.lock_key:
        # No lock to take with it: the start transition's own check settles races.
        return _start(execution, locked=False)
    with transaction.atomic():
        execution = Execution.objects.select_for_update().get(pk=pk)
        return _start(execution, locked=True)


def _start(execution: Execution, *, locked: bool) -> tuple[Execution, Pipeline, uuid.UUID] | None:
    try:
        if not _runnable(execution, locked=locked):
            return None
        try:
            pipeline = registry.get(execution.pipeline)
        except UnknownPipeline as exc:
            _fail_before_start(execution, str(exc), "error", locked=locked)
            return None
        run_token = uuid.uuid4()
        if execution.lock_key and not _take_lock(execution, pipeline, run_token):
            return None
        transition(
            execution,
            ExecutionStatus.RUNNING,
            event_type="started",
            data={
                "attempt": execution.attempt,
                "submission": execution.submissions,
                "redeliveries": execution.redeliveries,
                **_started_data(run_token, lock_key=execution.lock_key or None),
            },
            run_token=run_token,
            run_after=None,
            locked=locked,
        )
    except IllegalTransition as exc:
        # Another delivery (or a cancel) changed it between our read and our write.
        record_event(
            execution,
            "delivery_ignored",
            {"status": exc.from_status, "reason": "changed while being claimed"},
        )
        return None
    return execution, pipeline, run_token


def _started_data(run_token: uuid.UUID, *, lock_key: str | None) -> dict[str, Any]:
    return {
        "worker": socket.gethostname(),
        "pid": os.getpid(),
        "run": str(run_token),
        "lock_key": lock_key,
    }


def _registered(
    execution: Execution, run_token: uuid.UUID
) -> tuple[Execution, Pipeline, uuid.UUID] | None:
    """The started execution with its pipeline; fails it if nobody registers that now."""
    try:
        return execution, registry.get(execution.pipeline), run_token
    except UnknownPipeline as exc:
        error = str(exc)
        transition(
            execution,
            ExecutionStatus.FAILED,
            data={"error": error},
            expect={"run_token": run_token},
            error=error,
        )
        metrics.FINISHED.labels(pipeline=execution.pipeline, status=ExecutionStatus.FAILED).inc()
        hand_off_failure(execution, "error")
        return None


def _runnable(execution: Execution, *, locked: bool) -> bool:
    if execution.status not in (ExecutionStatus.PENDING, ExecutionStatus.QUEUED):
        record_event(
            execution, "delivery_ignored", {"status": execution.status, "reason": "not runnable"}
        )
        return False
    if execution.run_after and execution.run_after > utc_now() + EARLY_TOLERANCE:
        record_event(
            execution,
            "delivery_ignored",
            {
                "status": execution.status,
                "reason": "early",
                "run_after": format_iso(execution.run_after),
            },
        )
        return False
    if execution.status == ExecutionStatus.PENDING:
        # The broker took the message though the hand-off looked failed to the sender.
        transition(
            execution,
            ExecutionStatus.QUEUED,
            data={"reason": "delivered while pending"},
            locked=locked,
        )
    return True


def _take_lock(execution: Execution, pipeline: Pipeline, run_token: uuid.UUID) -> bool:
    key = execution.lock_key
    ttl = (
        pipeline.timeout_seconds
        + settings.SPINE_TIME_LIMIT_GRACE_SECONDS
        + settings.SPINE_REAP_AFTER_SECONDS
    )
    outcome = acquire_lock(key, execution, run_token, ttl_seconds=ttl)
    if outcome.acquired:
        if outcome.taken_over_from:
            record_event(
                execution,
                "lock_taken_over",
                {"key": key, "expired_holder": str(outcome.taken_over_from)},
            )
        return True
    metrics.LOCK_WAITS.labels(pipeline=pipeline.name, policy=pipeline.lock_policy).inc()
    holder = str(outcome.holder_id) if outcome.holder_id else "another execution"
    if pipeline.lock_policy == "fail":
        _fail_before_start(
            execution,
            f"locked by {holder} (lock key {key})",
            "lock",
            event_type="lock_refused",
            data={"key": key, "locked_by": holder},
        )
        return False
    base = settings.SPINE_LOCK_RETRY_SECONDS
    delay = min(base * 2 ** max(execution.submissions - 1, 0), base * LOCK_BACKOFF_CAP)
    retry_at = utc_now() + timedelta(seconds=delay)
    record_event(
        execution,
        "lock_wait",
        {"key": key, "locked_by": holder, "retry_at": format_iso(retry_at)},
    )

    def resubmit() -> None:
        from executions.dispatcher import default_dispatcher

        default_dispatcher.resubmit(execution, reason="lock_wait", run_after=retry_at)

    transaction.on_commit(resubmit)
    return False


def _fail_before_start(
    execution: Execution,
    error: str,
    failure_kind: str,
    *,
    event_type: str = "failed",
    data: dict[str, Any] | None = None,
    locked: bool = True,
) -> None:
    transition(
        execution,
        ExecutionStatus.FAILED,
        event_type=event_type,
        data={"error": error, **(data or {})},
        error=error,
        locked=locked,
    )
    metrics.FINISHED.labels(pipeline=execution.pipeline, status=ExecutionStatus.FAILED).inc()
    transaction.on_commit(lambda: hand_off_failure(execution, failure_kind))


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
        with ctx.handler_running():
            result = ctx.pipeline.handler(ctx)
        return Outcome(ExecutionStatus.SUCCEEDED, result=_json_result(result))
    except ExecutionInterrupted as exc:
        if exc.execution_id and exc.execution_id != str(ctx.execution_id):
            # A nested in-process run caught its parent's interrupt: stop, then pass it up.
            error = f"interrupted: {exc.reason} (execution {exc.execution_id})"
            return Outcome(ExecutionStatus.FAILED, error=error, reraise=exc)
        if isinstance(exc, PipelineTimeout):
            return Outcome(ExecutionStatus.TIMED_OUT, error=f"timed out: {exc.reason}")
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
        with transaction.atomic() if holds_lock else nullcontext():
            record_event(
                execution,
                "handler_stopped" if stopped else "late_result",
                {"outcome": outcome.status, **data},
            )
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
