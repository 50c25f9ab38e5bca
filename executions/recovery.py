"""Nothing is lost: the sweeper resubmits what never reached a worker, the reaper
settles what a dead worker left running."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction

from executions import fencing, metrics, selectors
from executions.dispatcher import Dispatcher, default_dispatcher
from executions.locks import release_lock
from executions.models import Execution, ExecutionStatus
from executions.registry import Pipeline, UnknownPipeline, registry
from executions.services import hand_off_failure, transition
from spine.time import format_iso, utc_now

logger = logging.getLogger(__name__)

BATCH = 500


def sweep_pending_executions(
    *,
    now: datetime | None = None,
    limit: int = BATCH,
    dispatcher: Dispatcher = default_dispatcher,
) -> int:
    """Hand pending executions older than ``SPINE_SWEEP_AFTER_SECONDS`` to the backend
    again, and re-publish queued ones that have not started long after they were due
    (their message is presumed lost: a broker that restarted empty); return how many
    were handed over.

    A queued execution is presumed lost ``SPINE_SWEEP_LOST_AFTER_SECONDS`` after it
    was due, twice that after a second hand-off, and so on, up to the broker's own
    redelivery window (``SPINE_SWEEP_QUEUED_AFTER_SECONDS``): one merely waiting in a
    long queue gets a few extra messages, never a growing pile. Every extra delivery is
    harmless, since only one can claim the execution.
    """
    now = now or utc_now()
    cutoff = now - timedelta(seconds=settings.SPINE_SWEEP_AFTER_SECONDS)
    pending = selectors.unsubmitted_executions(cutoff)[:limit]
    count = 0
    for execution in pending:
        before = execution.submissions
        count += dispatcher.submit(execution, reason="sweeper").submissions > before
    # A local timer that has not fired by its due time plus the sweep delay never will.
    local = dispatcher.backend.hand_offs_die_with_process
    first = settings.SPINE_SWEEP_AFTER_SECONDS if local else settings.SPINE_SWEEP_LOST_AFTER_SECONDS
    lost = selectors.lost_queued_executions(now - timedelta(seconds=first))[:limit]
    for execution in lost:
        waited = now - max(filter(None, (execution.queued_at, execution.run_after)))
        if not local and waited < presumed_lost_after(execution.submissions):
            continue
        before = execution.submissions
        resubmitted = dispatcher.resubmit(
            execution, reason="message presumed lost", waited_seconds=int(waited.total_seconds())
        )
        count += resubmitted.submissions > before
    if count:
        logger.info("sweeper handed %s execution(s) to the backend again", count)
    return count


def presumed_lost_after(submissions: int) -> timedelta:
    """How long a queued execution handed off ``submissions`` times may wait for a
    worker before its message is presumed lost."""
    doublings = min(max(submissions - 1, 0), 20)
    seconds = settings.SPINE_SWEEP_LOST_AFTER_SECONDS * 2**doublings
    return timedelta(seconds=min(seconds, settings.SPINE_SWEEP_QUEUED_AFTER_SECONDS))


@dataclass(frozen=True)
class Reaped:
    """One execution the reaper settled, and how."""

    execution_id: object
    action: str  # "requeued", "failed" or "timed_out"


def reap_stale_executions(
    *,
    now: datetime | None = None,
    limit: int = BATCH,
    lanes: Iterable[str] | None = None,
    dispatcher: Dispatcher = default_dispatcher,
) -> list[Reaped]:
    """Settle running executions whose heartbeat is older than ``SPINE_REAP_AFTER_SECONDS``.

    A run that was still beating at its time limit was stopped by it: ``timed_out``.
    Otherwise its worker was lost: back to the queue while the pipeline allows
    (``redeliveries < max_requeues``), else ``failed``; both failures go to the
    dead-letter queue. ``lanes`` limits it to executions on those lanes (a worker
    reaping for the queues it consumes at start-up).
    """
    now = now or utc_now()
    stale_before = now - timedelta(seconds=settings.SPINE_REAP_AFTER_SECONDS)
    silent = selectors.silent_running_executions(stale_before)
    if lanes is not None:
        silent = silent.filter(lane__in=list(lanes))
    candidates = list(silent.values_list("pk", flat=True)[:limit])
    reaped = [r for pk in candidates if (r := _reap(pk, stale_before, dispatcher)) is not None]
    if reaped:
        logger.warning("reaper settled %s silent execution(s)", len(reaped))
    return reaped


def _reap(pk: object, stale_before: datetime, dispatcher: Dispatcher) -> Reaped | None:
    with transaction.atomic():
        execution = (
            # NO KEY: a paused run's open write holds a key-share lock on its row.
            Execution.objects.select_for_update(skip_locked=True, no_key=True)
            .filter(pk=pk, status=ExecutionStatus.RUNNING)
            .first()
        )
        last_sign = execution and (execution.heartbeat_at or execution.started_at)
        if execution is None or last_sign is None or last_sign >= stale_before:
            return None  # settled meanwhile, or it beat after all
        try:
            pipeline: Pipeline | None = registry.get(execution.pipeline)
        except UnknownPipeline:
            pipeline = None
        action = _decide(execution, pipeline, last_sign)
        seen = format_iso(last_sign)
        release_lock(execution)
        if action == "requeued":
            transition(
                execution,
                ExecutionStatus.QUEUED,
                event_type="requeued",
                data={"reason": "worker lost", "last_heartbeat": seen},
                redeliveries=execution.redeliveries + 1,
                submissions=execution.submissions + 1,
                run_token=None,
                run_after=None,
            )
            transaction.on_commit(lambda: dispatcher.hand_to_backend(execution))
        else:
            if action == "timed_out":
                limit = pipeline.timeout_seconds if pipeline else 0
                error = f"timed out: stopped at its time limit of {limit}s (last heartbeat {seen})"
                status, kind = ExecutionStatus.TIMED_OUT, "timeout"
            else:
                allowed = pipeline.max_requeues if pipeline else 0
                error = (
                    f"worker lost: no heartbeat since {seen} "
                    f"(requeued {execution.redeliveries} of {allowed} allowed times)"
                )
                status, kind = ExecutionStatus.FAILED, "worker_lost"
            transition(
                execution,
                status,
                event_type=status,
                data={"error": error, "reaped": True, "last_heartbeat": seen},
                error=error,
                run_token=None,
            )
            metrics.FINISHED.labels(pipeline=execution.pipeline, status=status).inc()
            transaction.on_commit(lambda: hand_off_failure(execution, kind))
        fencing.fence()
    metrics.REAPED.labels(pipeline=execution.pipeline, action=action).inc()
    return Reaped(execution.pk, action)


def _decide(execution: Execution, pipeline: Pipeline | None, last_sign: datetime) -> str:
    if pipeline is None:
        return "failed"
    deadline = execution.started_at + timedelta(seconds=pipeline.timeout_seconds)
    if last_sign + timedelta(seconds=settings.SPINE_HEARTBEAT_SECONDS) >= deadline:
        return "timed_out"
    if execution.redeliveries < pipeline.max_requeues:
        return "requeued"
    return "failed"
