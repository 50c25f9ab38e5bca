"""Pipeline ``otc.fetch_week``: one FINRA week from the Query API, through to analytics."""

from __future__ import annotations

from typing import Any

from executions.registry import RERUN_SAFE_REQUEUES, RetryPolicy, pipeline
from executions.run_context import RunContext
from otc.finra import FinraClient
from otc.models import Capture
from otc.params import WeekParams
from otc.pipelines.steps import WEEK_LOCK, normalize_and_compute, run_step
from otc.services import fetch, reconcile

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
