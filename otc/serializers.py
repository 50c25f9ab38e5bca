"""API shapes of the OTC analytics: the query parameters endpoints read, the rows they answer."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from otc import selectors
from otc.models import (
    Capture,
    CaptureState,
    QualityReport,
    Reject,
    SymbolRolling,
    SymbolWeekSummary,
)
from otc.params import TierField, WeekField
from otc.selectors.pages import SYMBOL_ROW_FIELDS
from otc.selectors.ranges import MAX_RANGE_WEEKS
from spine.api.fields import JSONCharField
from spine.time import parse_iso

_PCT = {"max_digits": 9, "decimal_places": 4}
_AVG = {"max_digits": 24, "decimal_places": 4}


# Query parameters --------------------------------------------------------------------


class AsOfField(serializers.DateTimeField):
    """An ISO 8601 instant read with :func:`spine.time.parse_iso` (no offset means UTC)."""

    default_error_messages = {
        "invalid": "Enter an ISO 8601 date or datetime, e.g. 2025-12-15T00:00:00Z.",
    }

    def to_internal_value(self, value: Any) -> datetime:
        try:
            return parse_iso(str(value))
        except (ValueError, OverflowError):
            self.fail("invalid")


_TIERS = {"type": "string", "enum": ["T1", "T2", "OTC", "OTCE"]}


class TierFieldSchema(OpenApiSerializerFieldExtension):
    """The pipelines' tier field (query parameters and pipeline params alike) documented
    with the values it accepts."""

    target_class = TierField
    match_subclasses = True

    def map_serializer_field(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        return dict(_TIERS)


@extend_schema_field(_TIERS)
class TierParam(TierField):
    """The pipelines' tier field, documented with its accepted values."""


def _tier_param() -> TierParam:
    return TierParam(
        required=False, help_text="T1, T2 or OTC (OTCE accepted); all tiers when omitted."
    )


def _as_of_param() -> AsOfField:
    return AsOfField(
        required=False,
        help_text="Answer from the captures (and analytics versions) known at this instant "
        "(ISO 8601, no offset = UTC); now when omitted.",
    )


class InventoryQuery(serializers.Serializer):
    """``?tier=&ats=&as_of=`` for inventories (weeks held): ATS and non-ATS both listed
    unless ``ats`` is given."""

    tier = _tier_param()
    ats = serializers.BooleanField(
        required=False, allow_null=True, default=None, help_text="ATS (true) or non-ATS (false)."
    )
    as_of = _as_of_param()


class AnalyticsQuery(serializers.Serializer):
    """``?tier=&ats=&as_of=`` for analytics: one ATS flag at a time, non-ATS by default
    (FINRA's weekly OTC download, as the pipelines' default)."""

    tier = _tier_param()
    ats = serializers.BooleanField(
        required=False, default=False, help_text="ATS volume (true) or non-ATS (false, default)."
    )
    as_of = _as_of_param()


class WeekQuery(AnalyticsQuery):
    week = WeekField(
        bounded=False,
        required=False,
        help_text="Any date (YYYY-MM-DD) in the reporting week, read as its Monday; "
        "the latest week held when omitted.",
    )


class SymbolListQuery(WeekQuery):
    search = JSONCharField(
        required=False,
        max_length=100,
        help_text="Symbol prefix or part of the issue name (case-insensitive).",
    )


class RangeQuery(AnalyticsQuery):
    """``?from=&to=`` (both optional, inclusive, any dates in the weeks); ``from`` after
    ``to`` is an empty range, as any other range without weeks held."""

    week_from = WeekField(
        bounded=False, required=False, help_text="First week (any date in it), inclusive."
    )
    week_to = WeekField(
        bounded=False, required=False, help_text="Last week (any date in it), inclusive."
    )

    #: ``from`` is a Python keyword: the fields are declared under other names and
    #: exposed (to validation and to the schema) under the names clients send.
    renamed = {"week_from": "from", "week_to": "to"}

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        for name, public in self.renamed.items():
            field = fields.pop(name)
            field.source = name
            fields[public] = field
        return fields


class QualityQuery(AnalyticsQuery):
    week = WeekField(
        bounded=False,
        required=False,
        help_text="Any date (YYYY-MM-DD) in the reporting week; every week when omitted.",
    )
    grade = serializers.ChoiceField(
        choices=["A", "B", "C", "D", "F"], required=False, help_text="Only this grade."
    )


@extend_schema_field(
    {
        "type": "string",
        "enum": ["true", "false", "all"],
        "default": "false",
        "description": "true: the ATS summary; false (default): non-ATS; all: both, each "
        "as its own series, plus a combined series labelled 'combined (ATS + non-ATS)'.",
    }
)
class SeriesField(serializers.Field):
    """``true`` / ``false`` / ``all`` (any case) read as True / False / None (both)."""

    default_error_messages = {"invalid": "Use true (ATS), false (non-ATS) or all."}
    _VALUES = {"true": True, "false": False, "all": None}

    def to_internal_value(self, data: Any) -> bool | None:
        key = data.strip().lower() if isinstance(data, str) else None
        if key not in self._VALUES:
            self.fail("invalid")
        return self._VALUES[key]

    def to_representation(self, value: Any) -> str:
        return "all" if value is None else str(bool(value)).lower()


class SeriesRangeQuery(serializers.Serializer):
    """``?start=&end=&tier=&ats=&as_of=`` of the range reads: both weeks required (any
    dates in them, inclusive), ``start`` not after ``end``, at most five years of weeks."""

    start = WeekField(bounded=False, help_text="First week (any date in it), inclusive.")
    end = WeekField(bounded=False, help_text="Last week (any date in it), inclusive.")
    tier = _tier_param()
    ats = SeriesField(required=False, default=False)
    as_of = _as_of_param()

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        start, end = attrs["start"], attrs["end"]
        if start > end:
            raise serializers.ValidationError({"end": [f"end ({end}) is before start ({start})."]})
        weeks = (end - start).days // 7 + 1
        if weeks > MAX_RANGE_WEEKS:
            raise serializers.ValidationError(
                {
                    "end": [
                        f"The range holds {weeks} weeks; at most {MAX_RANGE_WEEKS} "
                        "(five years) are answered at once."
                    ]
                }
            )
        return attrs


# Responses -----------------------------------------------------------------------------


_Q4 = Decimal("0.0001")


def _fast(field: serializers.Field) -> Callable[[Any], Any] | None:
    """A plain converter giving what ``field.to_representation`` gives, for the simple
    field types of the analytics rows; ``None`` for any other field."""
    if isinstance(field, serializers.BooleanField):
        return bool
    if isinstance(field, serializers.IntegerField):
        return int
    if isinstance(field, serializers.CharField):
        return str
    if isinstance(field, serializers.DecimalField) and field.decimal_places == 4:
        return lambda value: format(_decimal(value).quantize(_Q4), "f")
    if isinstance(field, serializers.DateField) and not isinstance(
        field, serializers.DateTimeField
    ):
        return lambda value: value.isoformat()
    return None


def _decimal(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


class FastRowsMixin:
    """Renders flat rows without DRF's per-field machinery, same output.

    The analytics lists answer up to 500 rows of a dozen fields; DRF's generic path
    (attribute lookup, then each field's ``to_representation`` with its checks and
    decimal context) costs about as much as the whole rest of the request. The plan
    (source attribute and converter per field) is built once per serializer class from
    its declared fields, so the schema and the output stay defined by those fields;
    fields of other types fall back to their own ``to_representation``.
    """

    _plans: dict[type, list[tuple[str, Callable[[Any], Any], Callable[[Any], Any]]]] = {}

    def to_representation(self, instance: Any) -> dict[str, Any]:
        plan = self._plans.get(type(self))
        if plan is None:
            plan = self._plans[type(self)] = self._plan()
        return {
            name: None if (value := get(instance)) is None else convert(value)
            for name, get, convert in plan
        }

    def _plan(self) -> list[tuple[str, Callable[[Any], Any], Callable[[Any], Any]]]:
        plan = []
        for field in self._readable_fields:  # type: ignore[attr-defined]
            source = field.source_attrs[0] if len(field.source_attrs) == 1 else None
            convert = _fast(field) or field.to_representation
            if source is None:
                plan.append((field.field_name, field.get_attribute, field.to_representation))
            else:
                plan.append((field.field_name, _getter(source), convert))
        return plan


def _getter(name: str) -> Callable[[Any], Any]:
    """Reads ``name`` from a model instance or a ``values()`` dict alike."""

    def get(row: Any) -> Any:
        return row[name] if isinstance(row, dict) else getattr(row, name)

    return get


class WeekHeldSerializer(serializers.ModelSerializer):
    """One week held: the capture answering for it and its quality grade at ``as_of``."""

    capture = serializers.IntegerField(source="pk", help_text="Capture id (see captures/).")
    grade = serializers.CharField(
        allow_null=True, help_text="Quality grade A–F; null when not computed yet."
    )
    rows = serializers.IntegerField(source="row_count")
    rejects = serializers.IntegerField(source="reject_count")
    served_by_finra = serializers.BooleanField(
        source="finra_served",
        allow_null=True,
        help_text="Whether FINRA's API still serves the week (false: only Market Spine "
        "keeps it now); null until a sync or fetch has checked.",
    )
    finra_last_seen = serializers.DateField(
        allow_null=True, help_text="Last day FINRA was seen serving the week."
    )

    class Meta:
        model = Capture
        fields = [
            "week",
            "tier",
            "ats",
            "capture",
            "grade",
            "rows",
            "rejects",
            "ingested_at",
            "computed_at",
            "served_by_finra",
            "finra_last_seen",
        ]
        read_only_fields = fields


class SymbolSummarySerializer(FastRowsMixin, serializers.ModelSerializer):
    """A symbol's week: totals, top venue and concentration (HHI 0–10,000 and level)."""

    capture = serializers.IntegerField(source="capture_id")

    class Meta:
        model = SymbolWeekSummary
        fields = [*SYMBOL_ROW_FIELDS, "capture"]
        read_only_fields = fields


class SymbolVenueSerializer(FastRowsMixin, serializers.Serializer):
    """One venue's part of a symbol's week."""

    mpid = serializers.CharField()
    venue_name = serializers.CharField()
    share_volume = serializers.IntegerField()
    trade_count = serializers.IntegerField()
    avg_trade_size = serializers.DecimalField(**_AVG, allow_null=True)
    share = serializers.DecimalField(
        **_PCT, allow_null=True, help_text="Percent of the symbol's volume (4 places, half up)."
    )


class SymbolVenuesSerializer(serializers.Serializer):
    """A symbol's venue breakdown for one week; the shares sum to 100 (up to rounding)."""

    symbol = serializers.CharField()
    issue_name = serializers.CharField()
    week = serializers.DateField()
    tier = serializers.CharField()
    ats = serializers.BooleanField()
    capture = serializers.IntegerField()
    total_volume = serializers.IntegerField()
    total_trades = serializers.IntegerField()
    venue_count = serializers.IntegerField()
    venues = SymbolVenueSerializer(many=True)


class RollingSerializer(serializers.ModelSerializer):
    """Six-week window ending at ``week``: averages over the weeks with volume, and this
    week's trend against the earlier weeks' average (±10%; null with one week)."""

    capture = serializers.IntegerField(source="capture_id")

    class Meta:
        model = SymbolRolling
        fields = [
            "symbol",
            "week",
            "tier",
            "ats",
            "window_start",
            "weeks_in_window",
            "current_volume",
            "window_volume",
            "avg_volume",
            "avg_trades",
            "trend",
            "computed_at",
            "capture",
        ]
        read_only_fields = fields


class VenueShareSerializer(FastRowsMixin, serializers.Serializer):
    """A venue's week in one tier: volume, trades, symbols, market share, rank, trend."""

    mpid = serializers.CharField()
    venue_name = serializers.CharField()
    week = serializers.DateField()
    tier = serializers.CharField()
    ats = serializers.BooleanField()
    total_volume = serializers.IntegerField()
    total_trades = serializers.IntegerField()
    symbol_count = serializers.IntegerField()
    market_share = serializers.DecimalField(
        **_PCT, allow_null=True, help_text="Percent of the tier's week (4 places, half up)."
    )
    rank = serializers.IntegerField(help_text="1 = most volume; ties share a rank.")
    trend = serializers.CharField(
        allow_null=True, help_text="Six-week trend: up, down or stable; null if none."
    )
    rolling_avg_volume = serializers.DecimalField(
        **_AVG, allow_null=True, help_text="Six-week average volume over weeks with volume."
    )
    weeks_in_window = serializers.IntegerField(allow_null=True)
    capture = serializers.IntegerField(source="capture_id")


_SERIES_HELP = "ATS, non-ATS, or combined (ATS + non-ATS): the two summaries added."
_ATS_HELP = "true: the ATS summary; false: non-ATS; null: the combined series."


class SymbolVenueShareRowSerializer(FastRowsMixin, serializers.Serializer):
    """One venue's part of a symbol's week in one series (ATS, non-ATS or combined)."""

    week = serializers.DateField()
    tier = serializers.CharField()
    series = serializers.CharField(help_text=_SERIES_HELP)
    ats = serializers.BooleanField(allow_null=True, help_text=_ATS_HELP)
    symbol = serializers.CharField()
    mpid = serializers.CharField()
    venue_name = serializers.CharField()
    shares = serializers.IntegerField(help_text="The venue's volume of the symbol that week.")
    trades = serializers.IntegerField()
    symbol_volume = serializers.IntegerField(
        help_text="The symbol's volume that week in the series (all venues)."
    )
    share = serializers.DecimalField(
        **_PCT, allow_null=True, help_text="Percent of symbol_volume (4 places, half up)."
    )
    rank = serializers.IntegerField(help_text="1 = most volume in the series; ties share it.")
    capture = serializers.IntegerField(
        source="capture_id", allow_null=True, help_text="Capture id; null when combined."
    )


class VenueMarketShareRowSerializer(FastRowsMixin, serializers.Serializer):
    """A venue's week in one tier and series (ATS, non-ATS or combined)."""

    week = serializers.DateField()
    tier = serializers.CharField()
    series = serializers.CharField(help_text=_SERIES_HELP)
    ats = serializers.BooleanField(allow_null=True, help_text=_ATS_HELP)
    mpid = serializers.CharField()
    venue_name = serializers.CharField()
    total_volume = serializers.IntegerField()
    total_trades = serializers.IntegerField()
    symbol_count = serializers.IntegerField(
        allow_null=True, help_text="Symbols traded; null when combined (no double counting)."
    )
    tier_volume = serializers.IntegerField(
        allow_null=True, help_text="Every venue's volume in the tier that week, in the series."
    )
    market_share = serializers.DecimalField(
        **_PCT, allow_null=True, help_text="Percent of tier_volume (4 places, half up)."
    )
    rank = serializers.IntegerField(help_text="1 = most volume in the series; ties share it.")
    capture = serializers.IntegerField(
        source="capture_id", allow_null=True, help_text="Capture id; null when combined."
    )


class QualityReportSerializer(serializers.ModelSerializer):
    """The quality gate's verdict on a capture: grade A–F, metrics, warnings, failures."""

    capture = serializers.IntegerField(source="capture_id")
    prior_capture = serializers.IntegerField(source="prior_capture_id", allow_null=True)
    metrics = serializers.DictField(child=serializers.JSONField())
    warnings = serializers.ListField(child=serializers.CharField())
    failures = serializers.ListField(child=serializers.CharField())

    class Meta:
        model = QualityReport
        fields = [
            "week",
            "tier",
            "ats",
            "grade",
            "metrics",
            "warnings",
            "failures",
            "capture",
            "prior_capture",
            "computed_at",
        ]
        read_only_fields = fields


class CaptureSerializer(serializers.ModelSerializer):
    """A capture's lineage: where the bytes came from, what they held, what replaced it."""

    url = serializers.HyperlinkedIdentityField(view_name="otc-capture-detail")
    rows = serializers.IntegerField(source="row_count")
    rejects = serializers.IntegerField(source="reject_count")
    current = serializers.BooleanField(
        source="is_current", help_text="Whether it answers for its week now (state current)."
    )
    state = serializers.ChoiceField(
        choices=CaptureState.choices,
        help_text="staged (awaiting compute), current, superseded, failed (normalize or "
        "compute failed) or rejected (the quality gate graded it F). Only a current "
        "capture answers for its week.",
    )
    failure = serializers.CharField(help_text="Why it failed or was rejected; empty otherwise.")
    superseded_by = serializers.IntegerField(source="superseded_by_id", allow_null=True)
    execution = serializers.UUIDField(source="execution_id", allow_null=True)
    quality_grade = serializers.CharField(help_text="Latest quality grade A–F; empty if none.")

    class Meta:
        model = Capture
        fields = [
            "id",
            "url",
            "tier",
            "week",
            "ats",
            "source",
            "checksum",
            "rows",
            "rejects",
            "current",
            "state",
            "failure",
            "ingested_at",
            "promoted_at",
            "superseded_at",
            "superseded_by",
            "normalized_at",
            "computed_at",
            "quality_grade",
            "execution",
        ]
        read_only_fields = fields


class CaptureDetailSerializer(CaptureSerializer):
    """One capture in full: adds its warnings, FINRA update dates, what it replaced and
    its latest quality report (also for a capture that never became current)."""

    supersedes = serializers.SerializerMethodField(
        help_text="Ids of the captures this one replaced."
    )
    quality_report = serializers.SerializerMethodField(
        help_text="The capture's latest quality report; null if none was made."
    )

    class Meta(CaptureSerializer.Meta):
        fields = [
            *CaptureSerializer.Meta.fields,
            "warnings",
            "last_update_dates",
            "supersedes",
            "quality_report",
        ]
        read_only_fields = fields

    def get_supersedes(self, obj: Capture) -> list[int]:
        return [capture.pk for capture in obj.superseded_captures.all()]

    @extend_schema_field(QualityReportSerializer(allow_null=True))
    def get_quality_report(self, obj: Capture) -> dict[str, Any] | None:
        report = selectors.latest_quality_report(obj)
        return None if report is None else QualityReportSerializer(report).data


class RejectSerializer(serializers.ModelSerializer):
    """A refused data line, as received, with why."""

    class Meta:
        model = Reject
        fields = ["line_no", "kind", "reason", "raw"]
        read_only_fields = fields
