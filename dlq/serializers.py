"""API representations of dead letters and the bodies of their actions.

Serializers only shape data; replay, resolve and discard go through
:mod:`dlq.services`, which decide what is allowed.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers
from rest_framework.reverse import reverse

from dlq.models import DeadLetter, Resolution
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
        fields = [*DeadLetterSerializer.Meta.fields, "params", "traceback"]
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
