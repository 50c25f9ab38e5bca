"""The work behind scheduled maintenance, shared by the ``ops.*`` pipelines and ``cleanup``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from dlq import selectors as dlq_selectors
from dlq import services as dlq_services
from dlq.models import Resolution
from executions.retention import purge_executions
from spine.time import format_iso, utc_now


def run_cleanup(
    older_than: timedelta, dlq_older_than: timedelta, *, dry_run: bool = False
) -> dict[str, Any]:
    """Purge resolved dead letters, then executions and events, past their retention.

    Dead letters go first: an execution a letter still points at is kept (the letter
    protects it), so purging letters first lets their executions go in the same run.
    A dry run counts the same rows without deleting any.
    """
    now = utc_now()
    letters_cutoff = now - dlq_older_than
    if dry_run:
        by_resolution = dict.fromkeys(Resolution.values, 0)
        for resolution in dlq_selectors.resolved_before(letters_cutoff).values_list(
            "resolution", flat=True
        ):
            by_resolution[resolution] += 1
        dead_letters = {"total": sum(by_resolution.values()), **by_resolution}
    else:
        dead_letters = dlq_services.purge_resolved(dlq_older_than, now=now)
    executions = purge_executions(
        older_than,
        now=now,
        dry_run=dry_run,
        letters_gone_before=letters_cutoff if dry_run else None,
    )
    return {
        "dry_run": dry_run,
        "executions": executions.executions,
        "events": executions.events,
        "kept_for_dead_letters": executions.kept_for_dead_letters,
        "executions_cutoff": format_iso(executions.cutoff),
        "dead_letters": dead_letters,
        "dead_letters_cutoff": format_iso(letters_cutoff),
    }
