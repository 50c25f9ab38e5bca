"""Query-string filters for the capture lineage list."""

from __future__ import annotations

from datetime import date, datetime

from django.db.models import QuerySet
from django_filters import rest_framework as filters

from otc.models import Capture, CaptureState, answering
from otc.parser import parse_tier
from otc.weeks import week_start
from spine.api.filters import StrictFilterSet, UTCDateTimeFilter


class CaptureFilter(StrictFilterSet):
    """``?tier=&week=&ats=&current=&state=&as_of=``.

    ``week`` is any date in the reporting week. ``as_of`` lists the captures ingested
    by then, and makes ``current`` mean "current at that instant" (promoted by then and
    not superseded yet), so ``?as_of=...&current=true`` is what the analytics answered
    from at that time.
    """

    tier = filters.ChoiceFilter(
        choices=[(code, code) for code in ("T1", "T2", "OTC", "OTCE")],
        method="filter_tier",
        help_text="T1, T2 or OTC (OTCE accepted).",
    )
    week = filters.DateFilter(method="filter_week", help_text="Any date in the reporting week.")
    ats = filters.BooleanFilter(help_text="ATS (true) or non-ATS (false) captures.")
    current = filters.BooleanFilter(
        method="filter_current",
        help_text="true: only the captures answering (at as_of, if given); false: the others.",
    )
    state = filters.ChoiceFilter(
        choices=CaptureState.choices,
        help_text="staged, current, superseded, failed or rejected (the state now).",
    )
    as_of = UTCDateTimeFilter(
        method="filter_as_of", help_text="Captures ingested by this instant (ISO 8601)."
    )

    class Meta(StrictFilterSet.Meta):
        model = Capture
        fields = ["tier", "week", "ats", "current", "state", "as_of"]

    def filter_tier(self, queryset: QuerySet[Capture], name: str, value: str) -> QuerySet:
        return queryset.filter(tier=parse_tier(value))

    def filter_week(self, queryset: QuerySet[Capture], name: str, value: date) -> QuerySet:
        return queryset.filter(week=week_start(value))

    def filter_as_of(self, queryset: QuerySet[Capture], name: str, value: datetime) -> QuerySet:
        return queryset.filter(ingested_at__lte=value)

    def filter_current(self, queryset: QuerySet[Capture], name: str, value: bool) -> QuerySet:
        known = answering(self.form.cleaned_data.get("as_of"))
        return queryset.filter(known) if value else queryset.exclude(known)
