"""Retention: deleting finished executions (and their events) past their age, in batches."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Exists, QuerySet

from executions.fencing import fence
from executions.models import TERMINAL_STATUSES, Execution, ExecutionEvent
from spine.time import format_iso, utc_now

logger = logging.getLogger(__name__)

DEFAULT_RETENTION = timedelta(days=90)
BATCH = 1000

# Given "protection released before" (or None), an Exists over what keeps an execution
# (correlated on OuterRef("pk")).
RetentionGuard = Callable[[datetime | None], Exists]
_guards: list[RetentionGuard] = []


def register_retention_guard(guard: RetentionGuard) -> None:
    """Keep every execution ``guard`` matches out of the purge (from ``AppConfig.ready()``).

    The guard is called with ``released_before``: protection released before that time
    (a dry run's "after the app's own retention ran first") counts as gone.
    """
    if guard not in _guards:
        _guards.append(guard)


@dataclass(frozen=True)
class RetentionResult:
    cutoff: datetime
    executions: int
    events: int
    kept_for_dead_letters: int
    dry_run: bool

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["cutoff"] = format_iso(self.cutoff)
        return data


def _finished_before(cutoff: datetime) -> QuerySet[Execution]:
    return Execution.objects.filter(status__in=TERMINAL_STATUSES, finished_at__lt=cutoff)


def expired_executions(
    cutoff: datetime, *, letters_gone_before: datetime | None = None
) -> QuerySet[Execution]:
    """Finished before ``cutoff`` and kept by no registered guard (a dead letter).

    ``letters_gone_before`` counts protection released before it (dead letters
    resolved then) as already purged: a dry run's "after the DLQ's retention ran first".
    """
    expired = _finished_before(cutoff)
    for guard in _guards:
        expired = expired.filter(~guard(letters_gone_before))
    return expired


def purge_executions(
    older_than: timedelta = DEFAULT_RETENTION,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    letters_gone_before: datetime | None = None,
    batch: int = BATCH,
) -> RetentionResult:
    """Delete executions (and their events) past retention; return the counts.

    Works in batches, each in its own transaction, so a large purge neither holds
    long locks nor needs the whole id list in memory. ``letters_gone_before`` (dry
    runs) treats dead letters resolved before it as purged.
    """
    if older_than < timedelta(0):
        raise ValueError("the retention age cannot be negative")
    cutoff = (now or utc_now()) - older_than
    expired = expired_executions(cutoff, letters_gone_before=letters_gone_before)
    kept = _finished_before(cutoff).count() - expired.count()
    if dry_run:
        events = ExecutionEvent.objects.filter(execution__in=expired.values("pk")).count()
        return RetentionResult(cutoff, expired.count(), events, kept, dry_run=True)
    executions = events = 0
    while True:
        ids = list(expired.order_by("finished_at", "pk").values_list("pk", flat=True)[:batch])
        if not ids:
            break
        with transaction.atomic():
            # Re-checked inside the transaction: a letter parked meanwhile protects.
            doomed = expired.filter(pk__in=ids)
            events += ExecutionEvent.objects.filter(execution__in=doomed).delete()[0]
            _, per_model = doomed.delete()
            executions += per_model.get(Execution._meta.label, 0)
            fence()
    logger.info(
        "retention removed %d execution(s) and %d event(s) finished before %s "
        "(%d kept for their dead letters)",
        executions,
        events,
        format_iso(cutoff),
        kept,
    )
    return RetentionResult(cutoff, executions, events, kept, dry_run=False)
