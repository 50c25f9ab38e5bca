"""Query-string filters for the executions list."""

from __future__ import annotations

from django.conf import settings
from django_filters import rest_framework as filters

from executions.models import Execution, ExecutionStatus, TriggerSource
from spine.api.filters import StrictFilterSet, TextFilter, UTCDateTimeFilter


class ExecutionFilter(StrictFilterSet):
    """``?pipeline=&status=&lane=&trigger_source=&created_after=&created_before=&parent=``.

    ``status`` may repeat (``?status=failed&status=timed_out``). Timestamps are ISO
    8601; one without an offset is read as UTC. ``created_after`` is inclusive,
    ``created_before`` exclusive, so consecutive ranges never overlap.
    """

    pipeline = TextFilter(help_text="Exact pipeline name.")
    status = filters.MultipleChoiceFilter(
        choices=ExecutionStatus.choices, help_text="One or more statuses."
    )
    lane = filters.ChoiceFilter(
        choices=[(lane, lane) for lane in settings.EXECUTION_LANES], help_text="Lane (queue)."
    )
    trigger_source = filters.ChoiceFilter(
        choices=TriggerSource.choices, help_text="What submitted the execution."
    )
    created_after = UTCDateTimeFilter(
        field_name="created_at", lookup_expr="gte", help_text="Created at or after (ISO 8601)."
    )
    created_before = UTCDateTimeFilter(
        field_name="created_at", lookup_expr="lt", help_text="Created before (ISO 8601)."
    )
    parent = filters.UUIDFilter(field_name="parent_id", help_text="Parent execution id.")

    class Meta(StrictFilterSet.Meta):
        model = Execution
        fields = [
            "pipeline",
            "status",
            "lane",
            "trigger_source",
            "created_after",
            "created_before",
            "parent",
        ]
