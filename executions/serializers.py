"""API representations of executions, their events and the pipeline registry.

Serializers only shape data: submitting goes through the Dispatcher, which validates
the pipeline name and its params against the registry before anything is written.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import serializers

from executions.models import Execution, ExecutionEvent
from executions.registry import Pipeline


class ExecutionSerializer(serializers.ModelSerializer):
    """An execution as listed: the ledger row's summary, without result or traceback."""

    parent = serializers.UUIDField(source="parent_id", read_only=True, allow_null=True)
    duration_seconds = serializers.FloatField(read_only=True, allow_null=True)
    url = serializers.HyperlinkedIdentityField(view_name="execution-detail")

    class Meta:
        model = Execution
        fields = [
            "id",
            "url",
            "pipeline",
            "params",
            "status",
            "lane",
            "trigger_source",
            "parent",
            "request_id",
            "attempt",
            "created_at",
            "queued_at",
            "started_at",
            "finished_at",
            "heartbeat_at",
            "run_after",
            "duration_seconds",
            "error",
        ]
        read_only_fields = fields


class ExecutionDetailSerializer(ExecutionSerializer):
    """One execution in full: adds its result, traceback and lock key."""

    events_url = serializers.HyperlinkedIdentityField(view_name="execution-events")

    class Meta(ExecutionSerializer.Meta):
        fields = [*ExecutionSerializer.Meta.fields, "lock_key", "result", "traceback", "events_url"]
        read_only_fields = fields


class ExecutionSubmitSerializer(serializers.Serializer):
    """What a client sends to run a pipeline; params are checked by the Dispatcher."""

    pipeline = serializers.CharField(max_length=100, help_text="A registered pipeline name.")
    params = serializers.DictField(
        child=serializers.JSONField(),
        required=False,
        default=dict,
        help_text="The pipeline's parameters (see /api/v1/pipelines/).",
    )
    lane = serializers.ChoiceField(
        choices=list(settings.EXECUTION_LANES),
        required=False,
        help_text="Override the pipeline's lane.",
    )


class ExecutionCancelSerializer(serializers.Serializer):
    reason = serializers.CharField(
        required=False, allow_blank=True, max_length=1000, default="", help_text="Why."
    )


class ExecutionEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = ExecutionEvent
        fields = ["id", "type", "timestamp", "data"]
        read_only_fields = fields


class RetryPolicySerializer(serializers.Serializer):
    max_retries = serializers.IntegerField()
    backoff_seconds = serializers.FloatField()
    backoff_max_seconds = serializers.FloatField()


class PipelineSerializer(serializers.Serializer):
    """A registered pipeline as clients need it to submit one."""

    name = serializers.CharField()
    description = serializers.CharField()
    lane = serializers.CharField()
    timeout_seconds = serializers.IntegerField()
    lock_key = serializers.SerializerMethodField(
        help_text="Concurrency key template over the params, 'computed from params' when a "
        "function derives it, null when runs never conflict."
    )
    lock_policy = serializers.CharField()
    retry = RetryPolicySerializer()
    max_requeues = serializers.IntegerField(
        help_text="Times a run is put back in the queue after its worker was lost "
        "(0: not safe to rerun; it fails as a dead letter)."
    )
    params_schema = serializers.SerializerMethodField(
        help_text="Parameter name → {type, required, default?, choices?, help?}."
    )

    def get_lock_key(self, pipeline: Pipeline) -> str | None:
        if pipeline.lock_key is None:
            return None
        return pipeline.lock_key if isinstance(pipeline.lock_key, str) else "computed from params"

    def get_params_schema(self, pipeline: Pipeline) -> dict[str, Any]:
        return pipeline.params_schema()
