"""``otc.fetch_scheduled``: the weekly pipeline beat runs to fetch FINRA's newest week."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from executions.dispatcher import dispatch
from executions.registry import RERUN_SAFE_REQUEUES, PipelineParams, pipeline
from executions.run_context import RunContext
from otc.models import Tier
from otc.weeks import scheduled_week

LANE = "maintenance"


class FetchScheduledParams(PipelineParams):
    tier = serializers.ChoiceField(choices=Tier.values, help_text="T1, T2 or OTC.")
    kinds = serializers.ChoiceField(
        choices=["both", "ats", "non_ats"],
        default="both",
        help_text="Fetch ATS volume, non-ATS OTC volume, or both (one child each).",
    )


@pipeline(
    "otc.fetch_scheduled",
    params=FetchScheduledParams,
    lane=LANE,
    max_requeues=RERUN_SAFE_REQUEUES,
    timeout_seconds=120,
    description="Dispatch otc.fetch_week for the newest week FINRA has published for a tier.",
)
def fetch_scheduled_pipeline(ctx: RunContext) -> dict[str, Any]:
    """Work out the week due for the tier and dispatch its fetches as children."""
    tier = ctx.params["tier"]
    week = scheduled_week(tier)
    flags = {"both": [True, False], "ats": [True], "non_ats": [False]}[ctx.params["kinds"]]
    children = []
    for ats in flags:
        child = dispatch(
            "otc.fetch_week",
            {"tier": tier, "week": week.isoformat(), "ats": ats},
            trigger_source=ctx.execution.trigger_source,
            parent=ctx.execution,
        )
        children.append({"ats": ats, "execution_id": str(child.pk), "status": child.status})
        ctx.event("child_dispatched", week=week.isoformat(), ats=ats, execution_id=str(child.pk))
    return {"tier": tier, "week": week.isoformat(), "children": children}
