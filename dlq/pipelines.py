"""The dead-letter queue's own pipeline: ``dlq.replay_batch``, a paced bulk replay.

Recorded in the ledger like any run, so a bulk replay has an execution with its
progress (an event per letter), its result (what each replay became) and, if it
fails, a dead letter of its own. Batches share one lock: they run one at a time, so
together they never exceed ``SPINE_REPLAY_RATE``.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from rest_framework import serializers

from dlq import services
from dlq.pacing import Pacer
from dlq.selectors import MAX_BULK, MAX_ID, PROGRESS_EVENT, REPLAY_BATCH_PIPELINE
from executions.registry import PipelineParams, pipeline
from executions.run_context import RunContext


class ReplayBatchParams(PipelineParams):
    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID),
        min_length=1,
        max_length=MAX_BULK,
        help_text="Dead letter ids, replayed in this order.",
    )
    force = serializers.BooleanField(
        default=False, help_text="Replay letters over their retry budget too."
    )
    signature = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=16,
        help_text="The group the letters were chosen by, if any (for the record).",
    )
    requested_by = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=150,
        help_text="Username recorded as who replayed each letter.",
    )


@pipeline(
    REPLAY_BATCH_PIPELINE,
    params=ReplayBatchParams,
    lane="maintenance",
    timeout_seconds=services.BATCH_TIMEOUT_SECONDS,
    lock_key="dlq:replay_batch",
    lock_policy="wait",
    launch_permission="dlq.replay_deadletter",
    actor_param="requested_by",
    description="Replay dead letters in order, at most SPINE_REPLAY_RATE a minute.",
)
def replay_batch_pipeline(ctx: RunContext) -> dict[str, Any]:
    """Replay the given letters at the configured rate; an event per letter."""
    username = ctx.params.get("requested_by") or ""
    by = get_user_model().objects.filter(username=username).first() if username else None
    result = services.run_replay_batch(
        list(ctx.params["ids"]),
        by=by,
        force=bool(ctx.params.get("force")),
        pacer=Pacer(services.replay_rate(), checkpoint=ctx.raise_if_cancelled),
        progress=lambda entry: ctx.event(PROGRESS_EVENT, **entry),
        batch_id=str(ctx.execution_id),
    )
    return result.as_dict()
