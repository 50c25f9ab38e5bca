"""Query-string filters for the dead-letter list."""

from __future__ import annotations

from django.db.models import QuerySet
from django_filters import rest_framework as filters

from dlq import selectors
from dlq.models import DeadLetter, FailureKind, Resolution
from spine.api.filters import StrictFilterSet, TextFilter, UTCDateTimeFilter


class DeadLetterFilter(StrictFilterSet):
    """``?pipeline=&failure_kind=&state=&resolution=&created_after=&created_before=&search=``.

    ``state`` is ``open`` or ``resolved`` (closed in any way); ``search`` matches a letter
    id, an execution id (or a fragment of one) or error text.
    """

    pipeline = TextFilter(help_text="Exact pipeline name.")
    failure_kind = filters.MultipleChoiceFilter(
        choices=FailureKind.choices, help_text="One or more failure kinds."
    )
    state = filters.ChoiceFilter(
        choices=[("open", "open"), ("resolved", "resolved")],
        method="filter_state",
        help_text="open, or resolved (closed in any way).",
    )
    resolution = filters.ChoiceFilter(choices=Resolution.choices, help_text="How it was closed.")
    created_after = UTCDateTimeFilter(
        field_name="created_at", lookup_expr="gte", help_text="Parked at or after (ISO 8601)."
    )
    created_before = UTCDateTimeFilter(
        field_name="created_at", lookup_expr="lt", help_text="Parked before (ISO 8601)."
    )
    search = TextFilter(method="filter_search", help_text="Id, execution id or error.")
    signature = TextFilter(help_text="The group's signature (16 hex digits).")
    error_class = TextFilter(help_text="Exact exception class, e.g. ValueError.")

    class Meta(StrictFilterSet.Meta):
        model = DeadLetter
        fields = [
            "pipeline",
            "failure_kind",
            "state",
            "resolution",
            "created_after",
            "created_before",
            "search",
            "signature",
            "error_class",
        ]

    def filter_state(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        if value == "open":
            return queryset.filter(resolved_at__isnull=True)
        if value == "resolved":
            return queryset.filter(resolved_at__isnull=False)
        return queryset

    def filter_search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return selectors.search_dead_letters(queryset, value)


class DeadLetterGroupFilter(StrictFilterSet):
    """``?pipeline=&failure_kind=&error_class=`` for the groups of open letters."""

    pipeline = TextFilter(help_text="Exact pipeline name.")
    failure_kind = filters.MultipleChoiceFilter(
        choices=FailureKind.choices, help_text="One or more failure kinds."
    )
    error_class = TextFilter(help_text="Exact exception class, e.g. ValueError.")

    class Meta(StrictFilterSet.Meta):
        model = DeadLetter
        fields = ["pipeline", "failure_kind", "error_class"]
