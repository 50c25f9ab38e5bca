"""The OTC admin: browse captures and their lineage, rejects, quality reports, analytics."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.text import Truncator

from otc.models import (
    LINE_KEY_BITS,
    Capture,
    LineKeyedQuerySet,
    QualityReport,
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
from spine.templatetags.spine_console import spine_int, spine_time


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


class KeySearchMixin:
    """Search by exact key (stored upper-case); when nothing has that key, by its
    beginning (``AAP`` finds AAPL); when nothing starts so, by words of the name
    (``apple``). The first two are index lookups; only a name search scans."""

    key_field = "symbol"
    name_field: str | None = "issue_name"

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        typed = search_term.strip()
        if not typed:
            return queryset, False
        term = typed.upper()
        for lookup in (self.key_field, f"{self.key_field}__startswith"):
            found = queryset.filter(**{lookup: term})
            if found.exists():
                return found, False
        if self.name_field:
            return queryset.filter(**{f"{self.name_field}__icontains": typed}), False
        return queryset.none(), False


class SymbolSearchMixin(KeySearchMixin):
    key_field = "symbol"
    name_field = "issue_name"


class MpidSearchMixin(KeySearchMixin):
    key_field = "mpid"
    name_field = "venue_name"


class ConsoleColumnsMixin:
    """Columns shared by the week-keyed tables: ATS as a word, counts with separators."""

    @admin.display(description="ATS", ordering="ats")
    def ats_display(self, obj: Any) -> str:
        return "ATS" if obj.ats else "non-ATS"

    @admin.display(description="volume", ordering="total_volume")
    def total_volume_display(self, obj: Any) -> str:
        return spine_int(obj.total_volume)

    @admin.display(description="trades", ordering="total_trades")
    def total_trades_display(self, obj: Any) -> str:
        return spine_int(obj.total_trades)


# --- captures and what was received -----------------------------------------------------------


@admin.register(Capture)
class CaptureAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "tier",
        "ats_display",
        "week",
        "rows_display",
        "rejects_display",
        "grade_display",
        "state_display",
        "finra_served_display",
        "ingested_display",
    )
    list_display_links = ("id", "week")
    list_filter = (
        "tier",
        "ats",
        "state",
        "quality_grade",
        "archive_status",
        "finra_served",
        WeekFilter,
    )
    search_fields = ("source", "checksum")
    search_help_text = "Source file name or checksum (or their beginning)."
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
                    "archive_status",
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
                    "ingested_display",
                    "normalized_display",
                    "computed_display",
                    "promoted_display",
                    "superseded_at_display",
                    "superseded_display",
                    "supersedes_display",
                )
            },
        ),
        (
            "FINRA dates and warnings",
            {"fields": ("last_update_dates", "finra_served_display", "warnings_display")},
        ),
        ("Browse", {"fields": ("browse_display",)}),
    )
    readonly_fields = (
        "ingested_display",
        "normalized_display",
        "computed_display",
        "promoted_display",
        "superseded_at_display",
        "state_display",
        "rows_display",
        "rejects_display",
        "grade_display",
        "execution_display",
        "superseded_display",
        "supersedes_display",
        "finra_served_display",
        "warnings_display",
        "browse_display",
    )

    @admin.display(description="ATS", ordering="ats", boolean=False)
    def ats_display(self, obj: Capture) -> str:
        return "ATS" if obj.ats else "non-ATS"

    @admin.display(description="source")
    def source_display(self, obj: Capture) -> str:
        return Truncator(obj.source).chars(48)

    @admin.display(description="ingested", ordering="ingested_at")
    def ingested_display(self, obj: Capture) -> SafeString | str:
        return spine_time(obj.ingested_at)

    @admin.display(description="normalized")
    def normalized_display(self, obj: Capture) -> SafeString | str:
        return spine_time(obj.normalized_at)

    @admin.display(description="computed")
    def computed_display(self, obj: Capture) -> SafeString | str:
        return spine_time(obj.computed_at)

    @admin.display(description="became current")
    def promoted_display(self, obj: Capture) -> SafeString | str:
        return spine_time(obj.promoted_at)

    @admin.display(description="superseded at")
    def superseded_at_display(self, obj: Capture) -> SafeString | str:
        return spine_time(obj.superseded_at)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        condition = Q(checksum__startswith=term.lower()) | Q(source__icontains=term)
        if term.isdigit():
            condition |= Q(pk=int(term))
        return queryset.filter(condition), False

    @admin.display(description="rows", ordering="row_count")
    def rows_display(self, obj: Capture) -> SafeString:
        url = _list_url("venuevolume", capture=obj.pk)
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

    @admin.display(description="served by FINRA", ordering="finra_served")
    def finra_served_display(self, obj: Capture) -> str:
        """The archive guarantee, visible: a week FINRA dropped is still held here."""
        if obj.finra_served is None:
            return "—"  # no sync has asked FINRA yet
        if obj.finra_served:
            return "yes"
        seen = f", last seen {obj.finra_last_seen.isoformat()}" if obj.finra_last_seen else ""
        return f"no{seen}"

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
    search_help_text = "Text in the reason or the raw line."
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


# --- quality ------------------------------------------------------------------------------------


@admin.register(QualityReport)
class QualityReportAdmin(ConsoleColumnsMixin, ReadOnlyAdmin):
    list_display = (
        "tier",
        "week",
        "ats_display",
        "grade_display",
        "warning_summary",
        "failure_summary",
        "computed_display",
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
                    "computed_display",
                    "replaced_display",
                )
            },
        ),
        ("Warnings and failures", {"fields": ("warnings_display", "failures_display")}),
        ("Metrics", {"fields": ("metrics_display",)}),
    )
    readonly_fields = (
        "computed_display",
        "replaced_display",
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

    @admin.display(description="computed", ordering="computed_at")
    def computed_display(self, obj: QualityReport) -> SafeString | str:
        return spine_time(obj.computed_at)

    @admin.display(description="replaced at")
    def replaced_display(self, obj: QualityReport) -> SafeString | str:
        return spine_time(obj.replaced_at)

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
class SymbolWeekSummaryAdmin(SymbolSearchMixin, ConsoleColumnsMixin, ReadOnlyAdmin):
    list_display = (
        "symbol",
        "issue_display",
        "tier",
        "week",
        "ats_display",
        "total_volume_display",
        "total_trades_display",
        "venue_count",
        "top_venue_mpid",
        "top_venue_share",
        "concentration",
        "capture_display",
    )
    list_filter = ("tier", "ats", "concentration", WeekFilter, CurrentCaptureFilter, CaptureFilter)
    search_fields = ("symbol",)
    search_help_text = "Symbol (e.g. AAPL), its beginning, or words of the issue name."
    # Along the (week, tier) index: the newest rows first without sorting the table.
    ordering = ("-week", "-tier")

    @admin.display(description="capture", ordering="capture")
    def capture_display(self, obj: SymbolWeekSummary) -> SafeString | str:
        return capture_link(obj.capture_id)

    @admin.display(description="issue")
    def issue_display(self, obj: SymbolWeekSummary) -> str:
        return Truncator(obj.issue_name).chars(28)


@admin.register(VenueMarketShare)
class VenueMarketShareAdmin(MpidSearchMixin, ConsoleColumnsMixin, ReadOnlyAdmin):
    list_display = (
        "mpid",
        "venue_display",
        "tier",
        "week",
        "ats_display",
        "rank",
        "market_share",
        "total_volume_display",
        "total_trades_display",
        "symbol_count",
        "capture_display",
    )
    list_filter = ("tier", "ats", WeekFilter, CurrentCaptureFilter, CaptureFilter)
    search_fields = ("mpid",)
    search_help_text = "MPID (e.g. CDRG), its beginning, or words of the venue name."
    ordering = ("-week", "tier", "ats", "rank")

    @admin.display(description="capture", ordering="capture")
    def capture_display(self, obj: VenueMarketShare) -> SafeString | str:
        return capture_link(obj.capture_id)

    @admin.display(description="venue")
    def venue_display(self, obj: VenueMarketShare) -> str:
        return Truncator(obj.venue_name).chars(28)


@admin.register(VenueVolume)
class VenueVolumeAdmin(SymbolSearchMixin, ConsoleColumnsMixin, ReadOnlyAdmin):
    """Normalized rows as before the dimensions: names, MPID, tier and the average trade
    size come from the model's annotations (``VenueVolumeManager``)."""

    list_display = (
        "symbol_display",
        "mpid_display",
        "venue_display",
        "tier_display",
        "week",
        "ats_display",
        "share_volume_display",
        "trade_count_display",
        "avg_trade_size_display",
        "capture_display",
    )
    list_filter = ("capture__tier", "capture__ats", WeekFilter, CaptureFilter)
    search_fields = ("issue__symbol",)
    search_help_text = "Symbol (e.g. AAPL), its beginning, or words of the issue name."
    # Newest capture first, then by line: the line key's order.
    ordering = ("-id",)

    def get_object(
        self, request: HttpRequest, object_id: str, from_field: str | None = None
    ) -> VenueVolume | None:
        # The line key names the capture; its week prunes the read to one partition.
        try:
            key = int(object_id)
            week = Capture.objects.values_list("week", flat=True).get(pk=key >> LINE_KEY_BITS)
        except (ValueError, OverflowError, Capture.DoesNotExist):
            return None
        queryset = self.get_queryset(request).filter(week=week, capture_id=key >> LINE_KEY_BITS)
        return queryset.filter(pk=key).first()

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [
            "capture",
            "week",
            "line_no",
            "symbol_display",
            "issue_name_display",
            "mpid_display",
            "venue_display",
            "tier_display",
            "ats_display",
            "share_volume_display",
            "trade_count_display",
            "avg_trade_size_display",
        ]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return self.get_readonly_fields(request, obj)

    @admin.display(description="symbol", ordering="symbol")
    def symbol_display(self, obj: VenueVolume) -> str:
        return obj.symbol  # type: ignore[attr-defined]

    @admin.display(description="issue name")
    def issue_name_display(self, obj: VenueVolume) -> str:
        return obj.issue_name  # type: ignore[attr-defined]

    @admin.display(description="MPID", ordering="mpid")
    def mpid_display(self, obj: VenueVolume) -> str:
        return obj.mpid  # type: ignore[attr-defined]

    @admin.display(description="tier", ordering="tier")
    def tier_display(self, obj: VenueVolume) -> str:
        return obj.tier  # type: ignore[attr-defined]

    @admin.display(description="ATS", ordering="ats")
    def ats_display(self, obj: Any) -> str:
        return "ATS" if obj.ats else "non-ATS"

    @admin.display(description="avg trade size")
    def avg_trade_size_display(self, obj: VenueVolume) -> Any:
        return obj.avg_trade_size  # type: ignore[attr-defined]

    @admin.display(description="capture", ordering="capture")
    def capture_display(self, obj: VenueVolume) -> SafeString | str:
        return capture_link(obj.capture_id)

    @admin.display(description="venue")
    def venue_display(self, obj: VenueVolume) -> str:
        return Truncator(obj.venue_name).chars(28)  # type: ignore[attr-defined]

    @admin.display(description="shares", ordering="share_volume")
    def share_volume_display(self, obj: VenueVolume) -> str:
        return spine_int(obj.share_volume)

    @admin.display(description="trades", ordering="trade_count")
    def trade_count_display(self, obj: VenueVolume) -> str:
        return spine_int(obj.trade_count)


@admin.register(Venue)
class VenueAdmin(MpidSearchMixin, ReadOnlyAdmin):
    list_display = ("mpid", "name", "first_seen_week", "last_seen_week", "shares_display")
    search_fields = ("mpid",)
    search_help_text = "MPID (e.g. CDRG), its beginning, or words of the venue name."
    name_field = "name"
    ordering = ("-last_seen_week", "mpid")

    @admin.display(description="market share")
    def shares_display(self, obj: Venue) -> SafeString:
        url = reverse("admin:otc_venuemarketshare_changelist") + f"?q={obj.mpid}"
        return format_html('<a href="{}">weeks</a>', url)


class _RollingAdmin(ConsoleColumnsMixin, ReadOnlyAdmin):
    list_filter = ("tier", "ats", "trend", VersionFilter, WeekFilter, CaptureFilter)
    ordering = ("-capture",)

    @admin.display(description="capture", ordering="capture")
    def capture_display(self, obj: Any) -> SafeString | str:
        return capture_link(obj.capture_id)

    @admin.display(description="this week", ordering="current_volume")
    def current_volume_display(self, obj: Any) -> str:
        return spine_int(obj.current_volume)

    @admin.display(description="weekly average", ordering="avg_volume")
    def avg_volume_display(self, obj: Any) -> str:
        return f"{obj.avg_volume:,.0f}" if obj.avg_volume is not None else "—"

    @admin.display(description="version", ordering="replaced_at")
    def version_display(self, obj: Any) -> str:
        return "current" if obj.replaced_at is None else "replaced"


_ROLLING_COLUMNS = (
    "tier",
    "week",
    "ats_display",
    "weeks_in_window",
    "current_volume_display",
    "avg_volume_display",
    "trend",
    "version_display",
    "capture_display",
)


@admin.register(SymbolRolling)
class SymbolRollingAdmin(SymbolSearchMixin, _RollingAdmin):
    list_display = ("symbol", *_ROLLING_COLUMNS)
    search_fields = ("symbol",)
    search_help_text = "Symbol or its beginning."
    name_field = None


@admin.register(VenueRolling)
class VenueRollingAdmin(MpidSearchMixin, _RollingAdmin):
    list_display = ("mpid", *_ROLLING_COLUMNS)
    search_fields = ("mpid",)
    search_help_text = "MPID or its beginning."
    name_field = None
