"""API representations of dead letters and the bodies of their actions.

Serializers only shape data; replay, resolve and discard go through
:mod:`dlq.services`, which decide what is allowed.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers
from rest_framework.reverse import reverse

from dlq.models import DeadLetter, Resolution
from dlq.selectors import MAX_BULK, MAX_ID
from spine.api.fields import JSONBooleanField, JSONCharField


class ResolutionField(serializers.ChoiceField):
    """How a letter was closed; ``null`` while it is open (stored as an empty string)."""

    def to_representation(self, value: Any) -> str | None:
        return value or None


class DeadLetterSerializer(serializers.ModelSerializer):
    """A dead letter as listed: what failed, how, and where it stands (no traceback)."""

    url = serializers.HyperlinkedIdentityField(view_name="deadletter-detail")
    state = serializers.SerializerMethodField(help_text="open or resolved.")
    execution = serializers.UUIDField(source="execution_id", read_only=True)
    execution_url = serializers.SerializerMethodField()
    replay_execution = serializers.UUIDField(
        source="replay_execution_id", read_only=True, allow_null=True
    )
    replay_execution_url = serializers.SerializerMethodField()
    resolution = ResolutionField(
        choices=Resolution.choices,
        allow_null=True,
        read_only=True,
        help_text="replayed, resolved or discarded; null while the letter is open.",
    )
    resolved_by = serializers.SerializerMethodField()
    previous = serializers.IntegerField(source="previous_id", read_only=True, allow_null=True)

    class Meta:
        model = DeadLetter
        fields = [
            "id",
            "url",
            "pipeline",
            "failure_kind",
            "error_class",
            "signature",
            "state",
            "resolution",
            "attempts",
            "max_retries",
            "execution",
            "execution_url",
            "replay_execution",
            "replay_execution_url",
            "previous",
            "error",
            "created_at",
            "next_retry_at",
            "last_retry_at",
            "resolved_at",
            "resolved_by",
            "note",
        ]
        read_only_fields = fields

    def get_state(self, obj: DeadLetter) -> str:
        return "open" if obj.is_open else "resolved"

    def _execution_url(self, execution_id: Any) -> str | None:
        if execution_id is None:
            return None
        return reverse(
            "execution-detail", kwargs={"pk": execution_id}, request=self.context.get("request")
        )

    def get_execution_url(self, obj: DeadLetter) -> str | None:
        return self._execution_url(obj.execution_id)

    def get_replay_execution_url(self, obj: DeadLetter) -> str | None:
        return self._execution_url(obj.replay_execution_id)

    def get_resolved_by(self, obj: DeadLetter) -> str | None:
        return obj.resolved_by.get_username() if obj.resolved_by_id and obj.resolved_by else None


class DeadLetterDetailSerializer(DeadLetterSerializer):
    """One dead letter in full: adds the params snapshot and the traceback."""

    class Meta(DeadLetterSerializer.Meta):
        fields = [
            *DeadLetterSerializer.Meta.fields,
            "params",
            "traceback",
            "original_params",
            "params_changes",
        ]
        read_only_fields = fields


class ReplaySerializer(serializers.Serializer):
    force = JSONBooleanField(
        required=False,
        default=False,
        help_text="Replay even when the letter's lineage is over its retry budget.",
    )
    note = JSONCharField(required=False, allow_blank=True, max_length=2000, default="")


class ResolveSerializer(serializers.Serializer):
    note = JSONCharField(max_length=2000, help_text="Required: how the failure was handled.")


class DiscardSerializer(serializers.Serializer):
    note = JSONCharField(
        required=False, allow_blank=True, max_length=2000, default="", help_text="Why."
    )


class DeadLetterGroupSerializer(serializers.Serializer):
    """Open dead letters failing the same way (same signature)."""

    signature = serializers.CharField(help_text="16 hex digits; name the group by it.")
    pipeline = serializers.CharField()
    failure_kind = serializers.CharField()
    error_class = serializers.CharField(help_text="Empty when the error names no class.")
    count = serializers.IntegerField(help_text="Open letters in the group.")
    first_seen = serializers.DateTimeField()
    last_seen = serializers.DateTimeField()
    example = serializers.SerializerMethodField(help_text="The group's newest letter.")
    example_error = serializers.SerializerMethodField()
    letters_url = serializers.SerializerMethodField(help_text="The group's open letters.")

    def _example(self, row: dict[str, Any]) -> DeadLetter | None:
        return self.context.get("examples", {}).get(row["example_id"])

    def get_example(self, row: dict[str, Any]) -> str:
        return reverse(
            "deadletter-detail",
            kwargs={"pk": row["example_id"]},
            request=self.context.get("request"),
        )

    def get_example_error(self, row: dict[str, Any]) -> str:
        example = self._example(row)
        return example.error[:2000] if example is not None else ""

    def get_letters_url(self, row: dict[str, Any]) -> str:
        base = reverse("deadletter-list", request=self.context.get("request"))
        return f"{base}?state=open&signature={row['signature']}"


class BulkReplaySerializer(serializers.Serializer):
    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID),
        min_length=1,
        max_length=MAX_BULK,
        help_text="Dead letter ids, replayed in this order.",
    )
    force = JSONBooleanField(
        required=False, default=False, help_text="Replay letters over their retry budget too."
    )


class GroupReplaySerializer(serializers.Serializer):
    force = JSONBooleanField(
        required=False, default=False, help_text="Replay letters over their retry budget too."
    )


class GroupDiscardSerializer(serializers.Serializer):
    reason = JSONCharField(max_length=2000, help_text="Required: why the runs are not wanted.")


class BulkDiscardSerializer(GroupDiscardSerializer):
    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID),
        min_length=1,
        max_length=MAX_BULK,
        help_text="Dead letter ids.",
    )


class BulkDiscardResultSerializer(serializers.Serializer):
    discarded = serializers.ListField(child=serializers.IntegerField())
    skipped = serializers.ListField(child=serializers.DictField())


class EditReplaySerializer(serializers.Serializer):
    params = serializers.DictField(
        help_text="The new params, validated against the pipeline's params schema."
    )
    force = JSONBooleanField(
        required=False,
        default=False,
        help_text="Replay even when the letter's lineage is over its retry budget.",
    )
