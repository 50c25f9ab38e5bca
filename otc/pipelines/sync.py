"""Pipeline ``otc.sync``: fetch every (dataset, week) FINRA publishes that the archive lacks."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from executions.registry import RERUN_SAFE_REQUEUES, PipelineParams, pipeline
from executions.run_context import RunContext
from otc.params import TierField, WeekField
from otc.pipelines.steps import DEFAULT_BATCH_SIZE, dispatch_children
from otc.services import fetch
from otc.services.sync import KINDS, plan_sync
from spine.time import utc_now

__all__ = ["SyncParams", "sync_pipeline"]

LANE = "backfill"
CHILD_PIPELINE = "otc.fetch_week"
#: The result lists at most this many items (a first sync of the whole history has
#: about 1,500); the children are all there either way.
MAX_ITEMS_IN_RESULT = 1000


class SyncParams(PipelineParams):
    tiers = serializers.ListField(
        child=TierField(),
        default=list,
        allow_empty=True,
        help_text="Tiers to sync (T1, T2, OTC); empty: all three.",
    )
    kinds = serializers.ChoiceField(
        choices=list(KINDS),
        default="all",
        help_text="ATS summaries, non-ATS OTC summaries, or all (default).",
    )
    since = WeekField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Oldest week to sync (any date in it); default: the oldest FINRA serves.",
    )
    dry_run = serializers.BooleanField(
        default=False, help_text="Only report what would be fetched; dispatch nothing."
    )
    batch_size = serializers.IntegerField(
        default=DEFAULT_BATCH_SIZE,
        min_value=1,
        max_value=1000,
        help_text="Children dispatched per database transaction.",
    )


@pipeline(
    "otc.sync",
    params=SyncParams,
    lane=LANE,
    lock_key="otc:sync",
    timeout_seconds=1800,
    max_requeues=RERUN_SAFE_REQUEUES,
    description=(
        "Compare the weeks FINRA publishes with the archive and dispatch one "
        "otc.fetch_week child per missing or changed (dataset, week), in batches."
    ),
)
def sync_pipeline(ctx: RunContext) -> dict[str, Any]:
    """Plan from FINRA's listing, then dispatch the children batch by batch."""
    p = ctx.params
    with fetch.finra_client() as client:
        plan = plan_sync(
            client,
            tiers=p["tiers"],
            kinds=p["kinds"],
            since=p["since"],
            today=utc_now().date(),
        )
    summary = plan.as_dict()
    all_items = summary.pop("items")
    ctx.event("sync_planned", **summary)
    items = all_items[:MAX_ITEMS_IN_RESULT]
    result: dict[str, Any] = {**summary, "dry_run": p["dry_run"], "dispatched": 0}
    result["items_not_listed"] = len(all_items) - len(items)
    if p["dry_run"] or not plan.items:
        return {**result, "items": items}
    children = dispatch_children(
        ctx,
        CHILD_PIPELINE,
        [item.params() for item in plan.items],
        lane=LANE,
        batch_size=p["batch_size"],
    )
    return {**result, "dispatched": len(children), "items": items}
