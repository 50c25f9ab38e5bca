"""API representations of executions, their events and the pipeline registry."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.serializers import PolymorphicProxySerializerExtension
from drf_spectacular.utils import PolymorphicProxySerializer
from rest_framework import serializers

from executions.models import Execution, ExecutionEvent
from executions.registry import InvalidParams, Pipeline, PipelineParams, registry
from spine.api.fields import JSONCharField, text_pattern


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

    pipeline = JSONCharField(max_length=100, help_text="A registered pipeline name.")
    params = serializers.DictField(
        child=serializers.JSONField(allow_null=True),
        required=False,
        default=dict,
        help_text="The pipeline's parameters (see /api/v1/pipelines/).",
    )
    lane = serializers.ChoiceField(
        choices=list(settings.EXECUTION_LANES),
        required=False,
        help_text="Override the pipeline's lane.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """JSON params have JSON types: ``"ats": 0`` or ``"limit": "5"`` are refused as
        the schema says, although the shell's ``-p ats=true`` strings are fine."""
        name = attrs.get("pipeline")
        if name in registry:
            errors = json_type_errors(registry.get(name), attrs.get("params") or {})
            if errors:
                raise InvalidParams(name, errors)
        return attrs


_JSON_TYPES: list[tuple[type[serializers.Field], tuple[type, ...], str]] = [
    (serializers.BooleanField, (bool,), "true or false"),
    (serializers.IntegerField, (int,), "an integer"),
    (serializers.FloatField, (int, float), "a number"),
    (serializers.DecimalField, (int, float, str), "a number"),
    (serializers.DictField, (dict,), "an object"),
    (serializers.ListField, (list,), "a list"),
    (serializers.JSONField, (object,), "JSON"),
    (serializers.Field, (str,), "a string"),
]


def json_type_errors(pipeline: Pipeline, params: dict[str, Any]) -> dict[str, list[str]]:
    """Params whose JSON type is not their field's (a bool is no integer here)."""
    errors: dict[str, list[str]] = {}
    fields = pipeline.params().fields
    for key, value in params.items():
        field = fields.get(key)
        if field is None or (value is None and field.allow_null):
            continue
        for klass, types, wanted in _JSON_TYPES:
            if isinstance(field, klass):
                if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
                    errors[key] = [f"Must be {wanted}."]
                break
    return errors


class SubmitShapes(PolymorphicProxySerializer):
    """The submission body for the schema: one shape per pipeline registered when the
    schema is generated (not when this module was imported)."""

    def __init__(self) -> None:
        super().__init__(
            component_name="ExecutionSubmit",
            serializers=submit_shapes,
            resource_type_field_name="pipeline",
        )

    @property  # type: ignore[override]
    def serializers(self) -> dict[str, type[serializers.Serializer]]:
        return submit_shapes()

    @serializers.setter
    def serializers(self, value: Any) -> None:
        pass


class SubmitShapesSchema(PolymorphicProxySerializerExtension):
    """Documents :class:`SubmitShapes` as drf-spectacular does any polymorphic body."""

    target_class = SubmitShapes


class PipelineParamsSchema(OpenApiSerializerExtension):
    """Pipeline params refuse unknown keys and NUL characters; their schema says so."""

    target_class = PipelineParams
    match_subclasses = True

    def map_serializer(self, auto_schema: Any, direction: Any) -> Any:
        schema = auto_schema._map_basic_serializer(self.target, direction)
        schema["additionalProperties"] = False
        properties = schema.get("properties", {})
        for name, field in self.target.fields.items():
            prop = properties.get(name, {})
            if isinstance(field, serializers.CharField) and prop.get("type") == "string":
                prop.setdefault("pattern", text_pattern(field))
        return schema


def submit_shapes() -> dict[str, type[serializers.Serializer]]:
    """For the schema: one request body per registered pipeline, its ``params`` the
    pipeline's own params (read at schema time, so every registered pipeline is in)."""
    return {pipeline.name: _submit_shape(pipeline) for pipeline in registry}


def _submit_shape(pipeline: Pipeline) -> type[serializers.Serializer]:
    suffix = "".join(part.capitalize() for part in pipeline.name.replace("_", ".").split("."))
    return type(
        f"Submit{suffix}Serializer",
        (serializers.Serializer,),
        {
            "__doc__": pipeline.description,
            "pipeline": serializers.ChoiceField(choices=[pipeline.name]),
            "params": pipeline.params(
                required=any(field.required for field in pipeline.params().fields.values()),
                help_text=f"Params of {pipeline.name}.",
            ),
            "lane": serializers.ChoiceField(
                choices=list(settings.EXECUTION_LANES),
                required=False,
                help_text="Override the pipeline's lane.",
            ),
        },
    )


class ExecutionCancelSerializer(serializers.Serializer):
    reason = JSONCharField(
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
