"""Claiming an execution for one run: idempotence, the lock key, the start."""

from __future__ import annotations

import logging
import os
import socket
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction

from executions import ledger_sql, metrics
from executions.locks import acquire_lock
from executions.models import Execution, ExecutionStatus
from executions.registry import Pipeline, UnknownPipeline, registry
from executions.services import IllegalTransition, hand_off_failure, record_event, transition
from spine.time import format_iso, utc_now

if TYPE_CHECKING:
    from executions.dispatcher import Dispatcher

logger = logging.getLogger(__name__)

# A delivery this early for an execution told to wait is a stray duplicate.
EARLY_TOLERANCE = timedelta(seconds=1)
# Lock waits back off from SPINE_LOCK_RETRY_SECONDS up to this many times that.
LOCK_BACKOFF_CAP = 32

Claimed = tuple[Execution, Pipeline, uuid.UUID]


def claim(execution_id: uuid.UUID | str, *, dispatcher: Dispatcher) -> Claimed | None:
    """Start ``execution_id`` for this delivery, or None; ``dispatcher`` resubmits lock waits."""
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
        return _start(execution, dispatcher, locked=False)
    with transaction.atomic():
        execution = Execution.objects.select_for_update().get(pk=pk)
        return _start(execution, dispatcher, locked=True)


def _start(execution: Execution, dispatcher: Dispatcher, *, locked: bool) -> Claimed | None:
    try:
        if not _runnable(execution, locked=locked):
            return None
        try:
            pipeline = registry.get(execution.pipeline)
        except UnknownPipeline as exc:
            _fail_before_start(execution, str(exc), "error", locked=locked)
            return None
        run_token = uuid.uuid4()
        if execution.lock_key and not _take_lock(execution, pipeline, run_token, dispatcher):
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


def _registered(execution: Execution, run_token: uuid.UUID) -> Claimed | None:
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


def _take_lock(
    execution: Execution, pipeline: Pipeline, run_token: uuid.UUID, dispatcher: Dispatcher
) -> bool:
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
        dispatcher.resubmit(execution, reason="lock_wait", run_after=retry_at)

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
