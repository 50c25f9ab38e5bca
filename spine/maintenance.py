"""The work behind Market Spine's scheduled maintenance, callable from anywhere.

The ``ops.*`` pipelines (:mod:`spine.pipelines`), the ``cleanup`` command and tests
all call these functions, so a scheduled run and a hand-run command do the same.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from dlq import selectors as dlq_selectors
from dlq import services as dlq_services
from dlq.models import Resolution
from executions.retention import purge_executions
from otc.parser import parse_tier
from spine.time import format_iso, utc_now, week_start

#: FINRA's publication delay per tier, in weeks after the reporting week ends.
PUBLICATION_DELAY_WEEKS = {"T1": 2, "T2": 4, "OTC": 4}


def scheduled_week(tier: str, today: date | None = None) -> date:
    """The newest reporting week FINRA has published for ``tier`` by ``today``.

    A week W (its Monday) ends on Friday W+4; T1 appears about two weeks later, on
    Monday W+21, and T2/OTC about four weeks later, on Monday W+35. So on any day of
    the week starting Monday M, the newest published week is M − (delay + 1) weeks.
    The weekly schedule runs on Tuesdays, a day after publication.
    """
    code = parse_tier(tier)
    monday = week_start(today or utc_now().date())
    return monday - timedelta(weeks=PUBLICATION_DELAY_WEEKS[code] + 1)


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
