"""The OTC admin: browse captures and their lineage, rejects, quality reports, analytics."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.text import Truncator

from otc.models import (
    Capture,
    LineKeyedQuerySet,
    QualityReport,
    RawRow,
    Reject,
    SymbolRolling,
    SymbolWeekSummary,
    Venue,
    VenueMarketShare,
    VenueRolling,
    VenueVolume,
    answering,
)
from spine.admin import ReadOnlyAdmin as BaseReadOnlyAdmin
from spine.admin import execution_link, pretty_json


def _url(model: str, pk: Any) -> str:
    return reverse(f"admin:otc_{model}_change", args=[pk])


def _list_url(model: str, **query: Any) -> str:
    base = reverse(f"admin:otc_{model}_changelist")
    return base + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def capture_link(capture_id: int | None, label: str | None = None) -> SafeString | str:
    if capture_id is None:
        return "—"
    return format_html(
        '<a href="{}">{}</a>', _url("capture", capture_id), label or f"#{capture_id}"
    )


def grade_badge(grade: str) -> SafeString | str:
    if not grade:
        return "—"
    return format_html('<span class="spine-grade spine-grade-{}">{}</span>', grade, grade)


def _bullets(items: list[Any]) -> SafeString | str:
    if not items:
        return "—"
    return format_html(
        '<ul class="spine-list">{}</ul>',
        format_html_join("", "<li>{}</li>", ((str(item),) for item in items)),
    )


# --- filters ---------------------------------------------------------------------------------


class WeekFilter(admin.SimpleListFilter):
    """The recent reporting weeks that have captures (read from the small capture table)."""

    title = "week"
    parameter_name = "week"
    SHOWN = 26

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        weeks = (
            Capture.objects.order_by("-week")
            .values_list("week", flat=True)
            .distinct()[: self.SHOWN]
        )
        return [(w.isoformat(), w.isoformat()) for w in weeks]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(week=self.value()) if self.value() else queryset


class CaptureFilter(admin.SimpleListFilter):
    """One capture's rows (any capture id is accepted; the newest are offered)."""

    title = "capture"
    parameter_name = "capture"
    SHOWN = 15

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        recent = Capture.objects.order_by("-ingested_at", "-id")[: self.SHOWN]
        return [
            (str(c.pk), f"#{c.pk} {c.tier} {c.week} {'ATS' if c.ats else 'non-ATS'}")
            for c in recent
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if not value:
            return queryset
        if not value.isdigit():
            return queryset.none()
        if isinstance(queryset, LineKeyedQuerySet):
            return queryset.of_capture(int(value))
        return queryset.filter(capture_id=int(value))


class CurrentCaptureFilter(admin.SimpleListFilter):
    """Rows of captures that answer today, or of the others (superseded, staged,
    failed or rejected: lineage and what never became current)."""

    title = "capture state"
    parameter_name = "current"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "current"), ("no", "not current")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "yes":
            return queryset.filter(answering(prefix="capture__"))
        if self.value() == "no":
            return queryset.exclude(answering(prefix="capture__"))
        return queryset


class VersionFilter(admin.SimpleListFilter):
    """Versioned analytics: the current computation, or rows a recomputation replaced."""

    title = "version"
    parameter_name = "version"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("current", "current"), ("replaced", "replaced")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "current":
            return queryset.filter(replaced_at__isnull=True)
        if self.value() == "replaced":
            return queryset.filter(replaced_at__isnull=False)
        return queryset


# --- base --------------------------------------------------------------------------------------


class ReadOnlyAdmin(BaseReadOnlyAdmin):
    """Every model field read-only on the detail page, declared ones first."""

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        declared = list(super().get_readonly_fields(request, obj))
        return declared + [f.name for f in self.model._meta.fields if f.name not in declared]


class SymbolSearchMixin:
    """Search by exact symbol (stored upper-case): an index lookup, not a scan."""

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        term = search_term.strip().upper()
        return (queryset.filter(symbol=term) if term else queryset), False


class MpidSearchMixin:
    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        term = search_term.strip().upper()
        return (queryset.filter(mpid=term) if term else queryset), False


# --- captures and what was received -----------------------------------------------------------


@admin.register(Capture)
class CaptureAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "tier",
        "ats_display",
        "week",
        "source_display",
        "rows_display",
        "rejects_display",
        "checksum_display",
        "grade_display",
        "state_display",
        "superseded_display",
        "ingested_at",
    )
    list_display_links = ("id", "week")
    list_filter = ("tier", "ats", "state", "quality_grade", WeekFilter)
    search_fields = ("source", "checksum")
    date_hierarchy = "week"
    ordering = ("-week", "tier", "ats", "-ingested_at")
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "tier",
                    "ats",
                    "week",
                    "state_display",
                    "failure",
                    "source",
                    "checksum",
                    "rows_display",
                    "rejects_display",
                    "grade_display",
                    "execution_display",
                )
            },
        ),
        (
            "Lineage",
            {
                "fields": (
                    "ingested_at",
                    "normalized_at",
                    "computed_at",
                    "promoted_at",
                    "superseded_at",
                    "superseded_display",
                    "supersedes_display",
                )
            },
        ),
        ("FINRA dates and warnings", {"fields": ("last_update_dates", "warnings_display")}),
        ("Browse", {"fields": ("browse_display",)}),
    )
    readonly_fields = (
        "state_display",
        "rows_display",
        "rejects_display",
        "grade_display",
        "execution_display",
        "superseded_display",
        "supersedes_display",
        "warnings_display",
        "browse_display",
    )

    @admin.display(description="ATS", ordering="ats", boolean=False)
    def ats_display(self, obj: Capture) -> str:
        return "ATS" if obj.ats else "non-ATS"

    @admin.display(description="source")
    def source_display(self, obj: Capture) -> str:
        return Truncator(obj.source).chars(48)

    @admin.display(description="rows", ordering="row_count")
    def rows_display(self, obj: Capture) -> SafeString:
        url = _list_url("rawrow", capture=obj.pk)
        return format_html('<a href="{}">{}</a>', url, f"{obj.row_count:,}")

    @admin.display(description="rejects", ordering="reject_count")
    def rejects_display(self, obj: Capture) -> SafeString | str:
        if not obj.reject_count:
            return "0"
        url = _list_url("reject", capture=obj.pk)
        return format_html('<a href="{}">{}</a>', url, f"{obj.reject_count:,}")

    @admin.display(description="checksum")
    def checksum_display(self, obj: Capture) -> SafeString | str:
        if not obj.checksum:
            return "—"
        return format_html('<code title="{}">{}…</code>', obj.checksum, obj.checksum[:12])

    @admin.display(description="quality", ordering="quality_grade")
    def grade_display(self, obj: Capture) -> SafeString | str:
        return grade_badge(obj.quality_grade)

    @admin.display(description="state", ordering="state")
    def state_display(self, obj: Capture) -> SafeString:
        return format_html(
            '<span class="spine-badge spine-badge-{}" title="{}">{}</span>',
            obj.state,
            Truncator(obj.failure).chars(200),
            obj.get_state_display(),
        )

    @admin.display(description="superseded by")
    def superseded_display(self, obj: Capture) -> SafeString | str:
        if obj.superseded_by_id is None:
            return "—"
        return capture_link(obj.superseded_by_id)

    @admin.display(description="supersedes")
    def supersedes_display(self, obj: Capture) -> SafeString | str:
        older = list(obj.superseded_captures.order_by("-ingested_at").values_list("pk", flat=True))
        if not older:
            return "—"
        return format_html_join(", ", "{}", ((capture_link(pk),) for pk in older))

    @admin.display(description="execution")
    def execution_display(self, obj: Capture) -> SafeString | str:
        execution_id = obj.execution_id
        return execution_link(execution_id, str(execution_id)[:8] if execution_id else None)

    @admin.display(description="warnings")
    def warnings_display(self, obj: Capture) -> SafeString | str:
        return _bullets(list(obj.warnings or []))

    @admin.display(description="rows of this capture")
    def browse_display(self, obj: Capture) -> SafeString:
        links = [
            ("rawrow", "raw rows"),
            ("reject", "rejects"),
            ("venuevolume", "normalized volume"),
            ("symbolweeksummary", "symbol summaries"),
            ("venuemarketshare", "venue market share"),
            ("qualityreport", "quality reports"),
        ]
        return format_html_join(
            " · ",
            '<a href="{}">{}</a>',
            ((_list_url(model, capture=obj.pk), label) for model, label in links),
        )


@admin.register(Reject)
class RejectAdmin(ReadOnlyAdmin):
    list_display = ("capture_display", "line_no", "reason", "raw_display")
    list_filter = (CaptureFilter,)
    search_fields = ("reason", "raw")
    ordering = ("-capture", "-line_no")
    list_select_related = ("capture",)

    @admin.display(description="capture", ordering="capture")
    def capture_display(self, obj: Reject) -> SafeString | str:
        return capture_link(obj.capture_id, str(obj.capture))

    @admin.display(description="raw line")
    def raw_display(self, obj: Reject) -> SafeString:
        return format_html("<code>{}</code>", Truncator(obj.raw).chars(120))


@admin.register(RawRow)
class RawRowAdmin(ReadOnlyAdmin):
    list_display = (
        "capture_display",
        "line_no",
        "symbol",
        "mpid",
        "share_quantity",
        "trade_count",
        "last_update_date",
        "reject_reason",
    )
    list_filter = (CaptureFilter,)
    ordering = ("-id",)  # newest capture first, then by line: the primary key's order
    search_help_text = "Exact symbol."

    search_fields = ("symbol",)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        # Raw symbols are as received (not upper-cased), so match them as typed.
        term = search_term.strip()
        return (queryset.filter(symbol=term) if term else queryset), False

    @admin.display(description="capture", ordering="capture")
    def capture_display(self, obj: RawRow) -> SafeString | str:
        return capture_link(obj.capture_id)


# --- quality ------------------------------------------------------------------------------------


@admin.register(QualityReport)
class QualityReportAdmin(ReadOnlyAdmin):
    list_display = (
        "tier",
        "week",
        "ats",
        "grade_display",
        "warning_summary",
        "failure_summary",
        "computed_at",
        "version_display",
        "capture_display",
    )
    list_filter = ("grade", "tier", "ats", VersionFilter, CaptureFilter, WeekFilter)
    ordering = ("-week", "tier", "-computed_at")
    list_select_related = ("capture",)
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "tier",
                    "week",
                    "ats",
                    "grade_display",
                    "capture_display",
                    "prior_display",
                    "computed_at",
                    "replaced_at",
                )
            },
        ),
        ("Warnings and failures", {"fields": ("warnings_display", "failures_display")}),
        ("Metrics", {"fields": ("metrics_display",)}),
    )
    readonly_fields = (
        "grade_display",
        "capture_display",
        "prior_display",
        "warnings_display",
        "failures_display",
        "metrics_display",
    )

    @admin.display(description="grade", ordering="grade")
    def grade_display(self, obj: QualityReport) -> SafeString | str:
        return grade_badge(obj.grade)

    @admin.display(description="warnings")
    def warning_summary(self, obj: QualityReport) -> str:
        warnings = list(obj.warnings or [])
        if not warnings:
            return "—"
        first = Truncator(str(warnings[0])).chars(80)
        return first if len(warnings) == 1 else f"{first} (+{len(warnings) - 1} more)"

    @admin.display(description="failures")
    def failure_summary(self, obj: QualityReport) -> str:
        failures = list(obj.failures or [])
        return Truncator("; ".join(map(str, failures))).chars(80) if failures else "—"

    @admin.display(description="version", ordering="replaced_at")
    def version_display(self, obj: QualityReport) -> str:
        return "current" if obj.replaced_at is None else "replaced"

    @admin.display(description="capture")
    def capture_display(self, obj: QualityReport) -> SafeString | str:
        return capture_link(obj.capture_id)

    @admin.display(description="compared with")
    def prior_display(self, obj: QualityReport) -> SafeString | str:
        return capture_link(obj.prior_capture_id) if obj.prior_capture_id else "— (no prior week)"

    @admin.display(description="warnings")
    def warnings_display(self, obj: QualityReport) -> SafeString | str:
        return _bullets(list(obj.warnings or []))

    @admin.display(description="failures")
    def failures_display(self, obj: QualityReport) -> SafeString | str:
        return _bullets(list(obj.failures or []))

    @admin.display(description="metrics")
    def metrics_display(self, obj: QualityReport) -> SafeString | str:
        return pretty_json(obj.metrics)


# --- analytics ----------------------------------------------------------------------------------


@admin.register(SymbolWeekSummary)
class SymbolWeekSummaryAdmin(SymbolSearchMixin, ReadOnlyAdmin):
    list_display = (
        "symbol",
        "tier",
        "week",
        "ats",
        "total_volume",
        "total_trades",
        "venue_count",
        "top_venue_mpid",
        "top_venue_share",
        "hhi",
        "concentration",
        "capture_display",
    )
    list_filter = ("tier", "ats", "concentration", WeekFilter, CurrentCaptureFilter, CaptureFilter)
    search_fields = ("symbol",)
    search_help_text = "Exact symbol, e.g. AAPL."
    # Along the (week, tier) index: the newest rows first without sorting the table.
    ordering = ("-week", "-tier")

    @admin.display(description="capture", ordering="capture")
    def capture_display(self, obj: SymbolWeekSummary) -> SafeString | str:
        return capture_link(obj.capture_id)


@admin.register(VenueMarketShare)
class VenueMarketShareAdmin(MpidSearchMixin, ReadOnlyAdmin):
    list_display = (
        "mpid",
        "venue_name",
        "tier",
        "week",
        "ats",
        "rank",
        "market_share",
        "total_volume",
        "total_trades",
        "symbol_count",
        "capture_display",
    )
    list_filter = ("tier", "ats", WeekFilter, CurrentCaptureFilter, CaptureFilter)
    search_fields = ("mpid",)
    search_help_text = "Exact MPID, e.g. CDRG."
    ordering = ("-week", "tier", "ats", "rank")

    @admin.display(description="capture", ordering="capture")
    def capture_display(self, obj: VenueMarketShare) -> SafeString | str:
        return capture_link(obj.capture_id)


@admin.register(VenueVolume)
class VenueVolumeAdmin(SymbolSearchMixin, ReadOnlyAdmin):
    list_display = (
        "symbol",
        "mpid",
        "venue_name",
        "tier",
        "week",
        "ats",
        "share_volume",
        "trade_count",
        "avg_trade_size",
        "capture_display",
    )
    list_filter = ("tier", "ats", WeekFilter, CaptureFilter)
    search_fields = ("symbol",)
    search_help_text = "Exact symbol, e.g. AAPL."
    # Backwards along the (capture, symbol, mpid) unique index: newest capture first.
    ordering = ("-capture", "-symbol", "-mpid")

    @admin.display(description="capture", ordering="capture")
    def capture_display(self, obj: VenueVolume) -> SafeString | str:
        return capture_link(obj.capture_id)


@admin.register(Venue)
class VenueAdmin(MpidSearchMixin, ReadOnlyAdmin):
    list_display = ("mpid", "name", "first_seen_week", "last_seen_week", "shares_display")
    search_fields = ("mpid",)
    ordering = ("mpid",)

    @admin.display(description="market share")
    def shares_display(self, obj: Venue) -> SafeString:
        url = reverse("admin:otc_venuemarketshare_changelist") + f"?q={obj.mpid}"
        return format_html('<a href="{}">weeks</a>', url)


class _RollingAdmin(ReadOnlyAdmin):
    list_filter = ("tier", "ats", "trend", VersionFilter, WeekFilter, CaptureFilter)
    ordering = ("-capture",)

    @admin.display(description="capture", ordering="capture")
    def capture_display(self, obj: Any) -> SafeString | str:
        return capture_link(obj.capture_id)


_ROLLING_COLUMNS = (
    "tier",
    "week",
    "ats",
    "weeks_in_window",
    "current_volume",
    "avg_volume",
    "trend",
    "replaced_at",
    "capture_display",
)


@admin.register(SymbolRolling)
class SymbolRollingAdmin(SymbolSearchMixin, _RollingAdmin):
    list_display = ("symbol", *_ROLLING_COLUMNS)
    search_fields = ("symbol",)
    search_help_text = "Exact symbol."


@admin.register(VenueRolling)
class VenueRollingAdmin(MpidSearchMixin, _RollingAdmin):
    list_display = ("mpid", *_ROLLING_COLUMNS)
    search_fields = ("mpid",)
    search_help_text = "Exact MPID."
