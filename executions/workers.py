"""Workers and queues, as an operator sees them: who is up, on which lanes, doing what
(docs/console.md#workers-and-queues).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Min
from django.http import HttpRequest

from executions.models import Execution, ExecutionStatus
from spine.time import utc_now

logger = logging.getLogger(__name__)

INSPECT_TIMEOUT = 1.0
CACHE_SECONDS = 10
CACHE_KEY = "spine:workers-panel:broker"
BROKER_UNREACHABLE = "broker unreachable"
LOCAL_MODE = "local, in-process"


@dataclass(frozen=True)
class ActiveRun:
    """An execution a worker is running now (the task's first argument is its id)."""

    execution_id: str
    pipeline: str
    started: datetime | None


@dataclass(frozen=True)
class Worker:
    name: str
    lanes: tuple[str, ...]
    concurrency: int | None
    active: tuple[ActiveRun, ...] = ()


@dataclass(frozen=True)
class Lane:
    name: str
    queued: int
    oldest_queued_at: datetime | None
    broker_length: int | None  # None: not known (local backend, broker unreachable)

    @property
    def oldest_age_seconds(self) -> float | None:
        if self.oldest_queued_at is None:
            return None
        return max((utc_now() - self.oldest_queued_at).total_seconds(), 0.0)


@dataclass(frozen=True)
class Schedule:
    name: str
    task: str
    enabled: bool
    last_run_at: datetime | None
    runs: int


@dataclass(frozen=True)
class BrokerView:
    """What the broker and its workers said (cached as one value)."""

    workers: tuple[Worker, ...] = ()
    queue_lengths: dict[str, int | None] = field(default_factory=dict)
    error: str = ""
    checked_at: datetime | None = None


@dataclass(frozen=True)
class WorkersAndQueues:
    backend: str
    mode: str  # "celery", or LOCAL_MODE, or "stub: nothing runs"
    workers: tuple[Worker, ...]
    lanes: tuple[Lane, ...]
    schedules: tuple[Schedule, ...]
    error: str = ""
    checked_at: datetime | None = None

    @property
    def in_process(self) -> bool:
        return self.mode == LOCAL_MODE


def lanes_from_ledger(queue_lengths: dict[str, int | None] | None = None) -> tuple[Lane, ...]:
    """Per configured lane: queued executions and when the oldest was queued."""
    rows = (
        Execution.objects.filter(status=ExecutionStatus.QUEUED)
        .order_by()
        .values("lane")
        .annotate(n=Count("id"), oldest=Min("queued_at"))
    )
    found = {row["lane"]: row for row in rows}
    names = list(settings.EXECUTION_LANES) + sorted(set(found) - set(settings.EXECUTION_LANES))
    lengths = queue_lengths or {}
    return tuple(
        Lane(
            name,
            found.get(name, {}).get("n", 0),
            found.get(name, {}).get("oldest"),
            lengths.get(name),
        )
        for name in names
    )


def schedules() -> tuple[Schedule, ...]:
    """Beat's schedules with their last run (django-celery-beat's own bookkeeping)."""
    from django_celery_beat.models import PeriodicTask

    rows = PeriodicTask.objects.order_by("name").values_list(
        "name", "task", "enabled", "last_run_at", "total_run_count"
    )
    return tuple(Schedule(*row) for row in rows if not row[0].startswith("celery."))


def _active_runs(tasks: list[dict[str, Any]]) -> tuple[ActiveRun, ...]:
    runs = []
    for task in tasks:
        args = task.get("args") or []
        execution_id = str(args[0]) if args else str(task.get("id", "")).split(":")[0]
        started = task.get("time_start")
        when = datetime.fromtimestamp(started, tz=UTC) if started else None
        runs.append(ActiveRun(execution_id, "", when))
    return tuple(runs)


def inspect_broker(app: Any = None, timeout: float = INSPECT_TIMEOUT) -> BrokerView:
    """Ask the workers (one round of ``timeout``) and the broker; never raises."""
    if app is None:
        from spine.celery import app
    try:
        with app.connection_for_write(connect_timeout=timeout) as connection:
            connection.ensure_connection(max_retries=1, timeout=timeout)
            inspect = app.control.inspect(timeout=timeout, connection=connection)
            queues = inspect.active_queues() or {}
            stats: dict[str, Any] = {}
            active: dict[str, Any] = {}
            if queues:  # the workers are known now: stop waiting once each has answered
                quick = app.control.inspect(
                    timeout=timeout, connection=connection, limit=len(queues)
                )
                stats = quick.stats() or {}
                active = quick.active() or {}
            lengths = _queue_lengths(connection)
    except Exception as exc:  # noqa: BLE001 - any broker failure is reported, not raised
        logger.warning("workers panel: %s (%s)", BROKER_UNREACHABLE, exc)
        return BrokerView(error=BROKER_UNREACHABLE, checked_at=utc_now())
    workers = tuple(
        Worker(
            name=name,
            lanes=tuple(sorted(q["name"] for q in queues.get(name) or [])),
            concurrency=(stats.get(name) or {}).get("pool", {}).get("max-concurrency"),
            active=_active_runs(active.get(name) or []),
        )
        for name in sorted(queues)
    )
    return BrokerView(workers=workers, queue_lengths=lengths, checked_at=utc_now())


def _queue_lengths(connection: Any) -> dict[str, int | None]:
    """Messages waiting in each lane's broker queue (Redis: the lists' lengths)."""
    from kombu.exceptions import ChannelError

    channel = connection.default_channel
    lengths: dict[str, int | None] = {}
    for lane in settings.EXECUTION_LANES:
        try:
            lengths[lane] = channel.queue_declare(queue=lane, passive=True).message_count
        except ChannelError:  # no list yet: nothing ever waited there
            lengths[lane] = 0
    return lengths


def broker_view(app: Any = None) -> BrokerView:
    """:func:`inspect_broker`, cached for ``CACHE_SECONDS`` across requests and processes."""
    try:
        view = cache.get(CACHE_KEY)
    except Exception:  # noqa: BLE001 - the cache is the broker's Redis: it may be down too
        logger.warning("workers panel: cache unreachable", exc_info=True)
        return inspect_broker(app)
    if view is None:
        view = inspect_broker(app)
        try:
            cache.set(CACHE_KEY, view, CACHE_SECONDS)
        except Exception:  # noqa: BLE001 - shown uncached, asked again next time
            logger.warning("workers panel: cache unreachable", exc_info=True)
    return view


def _with_pipelines(workers: tuple[Worker, ...]) -> tuple[Worker, ...]:
    """The workers with each active run's pipeline read from the ledger (one query)."""
    ids = []
    for run in (run for w in workers for run in w.active):
        try:
            ids.append(uuid.UUID(run.execution_id))
        except ValueError:
            continue
    if not ids:
        return workers
    rows = Execution.objects.filter(pk__in=ids).values_list("pk", "pipeline")
    names = {str(pk): pipeline for pk, pipeline in rows}
    return tuple(
        replace(
            w,
            active=tuple(replace(r, pipeline=names.get(r.execution_id, "?")) for r in w.active),
        )
        for w in workers
    )


def workers_and_queues(app: Any = None) -> WorkersAndQueues:
    """Everything the workers and queues panel shows."""
    backend = settings.EXECUTION_BACKEND
    if backend != "celery":
        mode = LOCAL_MODE if backend == "local" else f"{backend}: nothing runs here"
        return WorkersAndQueues(
            backend=backend,
            mode=mode,
            workers=(),
            lanes=lanes_from_ledger(),
            schedules=schedules(),
        )
    view = broker_view(app)
    return WorkersAndQueues(
        backend=backend,
        mode="celery",
        workers=_with_pipelines(view.workers),
        lanes=lanes_from_ledger(view.queue_lengths),
        schedules=schedules(),
        error=view.error,
        checked_at=view.checked_at,
    )


def workers_panel(request: HttpRequest | None = None) -> dict[str, Any]:
    """Template context for ``admin/executions/workers_panel.html``."""
    return {"workers_panel": workers_and_queues()}


__all__ = [
    "BROKER_UNREACHABLE",
    "LOCAL_MODE",
    "WorkersAndQueues",
    "broker_view",
    "inspect_broker",
    "workers_and_queues",
    "workers_panel",
]
