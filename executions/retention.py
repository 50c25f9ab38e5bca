"""Retention: the one deliberate deletion of ledger history.

Executions are history and are never deleted by hand; past retention they go, with
their events, in batches. What is *past retention* is exact and checked by tests:

* only finished executions (succeeded, failed, cancelled, timed out) whose
  ``finished_at`` is before the cutoff — a pending, queued or running one is never
  removed, however old (it is the sweeper's or the reaper's);
* never one that still has a dead letter: a dead letter protects its execution (the
  DLQ's own retention purges resolved letters first; open ones wait for a person).

Deleting an execution keeps what points at it: children lose their parent link,
captures their execution link, replayed dead letters their replay link.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet

from executions.fencing import fence
from executions.models import TERMINAL_STATUSES, Execution, ExecutionEvent
from spine.time import format_iso, utc_now

logger = logging.getLogger(__name__)

DEFAULT_RETENTION = timedelta(days=90)
BATCH = 1000


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
    """Finished before ``cutoff`` and not protected by a dead letter.

    ``letters_gone_before`` counts letters resolved before it as already purged (a
    dry run's answer to "and after the DLQ's retention ran first?").
    """
    from dlq.models import DeadLetter

    letters = DeadLetter.objects.filter(execution_id=OuterRef("pk"))
    if letters_gone_before is not None:
        letters = letters.exclude(resolved_at__lt=letters_gone_before)
    return _finished_before(cutoff).filter(~Exists(letters))


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
