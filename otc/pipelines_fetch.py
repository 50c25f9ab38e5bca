"""Pipeline ``otc.fetch_week``: one FINRA week from the Query API, through to analytics.

Steps of one execution, recorded like the full ETL's (``step_started`` /
``step_finished``; the fetch adds a ``fetch_progress`` event per page):

1. ``fetch`` — the week's per-venue rows, page by page, into a capture through the
   file ingest (:mod:`otc.fetch`): same parser, checksum and supersession;
2. ``normalize`` and ``compute`` — exactly the full ETL's, skipped for an unchanged
   capture that is already computed;
3. ``reconcile`` — FINRA's per-symbol totals against the capture's venue rows
   (:mod:`otc.reconcile`), recorded on its quality report; skipped when that report
   already carries a reconciliation.

So an unchanged week is a no-op, and a run that failed part-way (FINRA down while
the totals were fetched, say) completes the missing steps when it is run again.
Params and lock are the other week pipelines': ``ats`` defaults to false (non-ATS),
and one lock per tier and week keeps a fetch and a file ingest from interleaving.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from executions.registry import RERUN_SAFE_REQUEUES, RetryPolicy, pipeline
from otc import fetch, reconcile
from otc.models import Capture
from otc.pipelines import WEEK_LOCK, WeekParams, normalize_and_compute, run_step

if TYPE_CHECKING:
    from executions.run_context import RunContext
    from otc.finra import FinraClient

__all__ = ["fetch_week_pipeline"]

#: FINRA outages are usually short: retry a few times, minutes apart.
FETCH_RETRY = RetryPolicy(max_retries=3, backoff_seconds=300, backoff_max_seconds=3600)


@pipeline(
    "otc.fetch_week",
    params=WeekParams,
    description=(
        "Fetch one week of FINRA OTC data from the Query API into a capture, then "
        "normalize, compute and reconcile it with FINRA's symbol totals."
    ),
    timeout_seconds=3600,
    lock_key=WEEK_LOCK,
    retry=FETCH_RETRY,
    max_requeues=RERUN_SAFE_REQUEUES,
)
def fetch_week_pipeline(ctx: RunContext) -> dict[str, Any]:
    """Fetch one FINRA week over the API and run it through the ETL."""
    p = ctx.params
    steps: dict[str, Any] = {}
    with fetch.finra_client() as client:
        fetched = run_step(
            ctx,
            steps,
            "fetch",
            lambda: fetch.fetch_week(
                client,
                tier=p["tier"],
                week=p["week"],
                ats=p["ats"],
                execution=ctx.execution,
                on_page=lambda progress: ctx.event("fetch_progress", **progress.as_dict()),
            ),
        )
        result = normalize_and_compute(ctx, steps, fetched)
        capture_id = fetched["capture_id"]
        if reconcile.needs_reconciliation(capture_id):
            run_step(ctx, steps, "reconcile", lambda: _reconcile(client, capture_id))
    return {**result, "fetch": fetched["fetch"], "reconciliation": steps.get("reconcile")}


def _reconcile(client: FinraClient, capture_id: int) -> reconcile.Reconciliation:
    capture = Capture.objects.get(pk=capture_id)
    _, totals_type = fetch.summary_types(capture.ats)
    totals = reconcile.iter_symbol_totals(
        client, tier=capture.tier, week=capture.week, summary_type=totals_type
    )
    result = reconcile.compare(capture_id, totals, summary_type=totals_type)
    reconcile.record_reconciliation(result)
    return result
