"""The executions admin: watch executions, read their history, cancel, re-run, launch
(docs/operations.md#the-admin).
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.db.models import CharField, Q, QuerySet, TextField
from django.db.models.functions import Cast
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from executions import selectors
from executions.dispatcher import cancel, dispatch
from executions.forms import CancelForm, LaneForm, RerunForm, params_form_class
from executions.models import (
    TERMINAL_STATUSES,
    Execution,
    ExecutionEvent,
    ExecutionLock,
    ExecutionStatus,
    TriggerSource,
)
from executions.registry import InvalidParams, UnknownPipeline
from executions.services import IllegalTransition
from executions.timeline import step_timeline
from executions.workers import workers_panel
from spine.admin import ConfirmedActionsMixin, ReadOnlyAdmin, execution_link, pretty_json
from spine.context import get_request_id
from spine.templatetags.spine_console import spine_time
from spine.text import human_duration
from spine.time import format_iso, parse_iso, utc_now

CANCEL_PERMISSION = "executions.cancel_execution"
RERUN_PERMISSION = "executions.rerun_execution"
LAUNCH_PERMISSION = "executions.add_execution"
CHILDREN_SHOWN = 200
#: Seconds between reloads of a list or page that shows a live execution.
REFRESH_SECONDS = 5
_HEXISH = re.compile(r"^[0-9a-fA-F-]{6,36}$")


# --- small renderers shared with the other admin pages --------------------------------


def status_badge(status: str) -> SafeString:
    """A coloured badge for an execution status (styles in admin/spine/styles.html)."""
    label = ExecutionStatus(status).label if status in ExecutionStatus.values else status
    return format_html('<span class="spine-badge spine-badge-{}">{}</span>', status, label)


def execution_url(execution_id: Any) -> str:
    return reverse("admin:executions_execution_change", args=[execution_id])


def execution_label(execution: Execution) -> str:
    """How links name an execution: ``<pipeline> · <short id>``."""
    return f"{execution.pipeline} · {str(execution.pk)[:8]}"


#: ``1.23 s``, ``4 min 05 s``, ``2 h 03 min``; ``—`` when not finished.
format_duration = human_duration


def timestamp(value: datetime | None) -> SafeString | str:
    """``2025-10-06 14:03:27 UTC`` with its ISO 8601 form in the tooltip; ``—`` for none."""
    return spine_time(value)


def is_live(status: str) -> bool:
    """Pending, queued or running: worth refreshing the page for."""
    return status not in TERMINAL_STATUSES


def _dead_letter_url(letter_id: int) -> str | None:
    try:
        return reverse("admin:dlq_deadletter_change", args=[letter_id])
    except NoReverseMatch:
        return None


# --- list filters ------------------------------------------------------------------------


class PipelineFilter(admin.SimpleListFilter):
    """Registered pipeline names: no DISTINCT scan over the whole ledger."""

    title = "pipeline"
    parameter_name = "pipeline"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        names = selectors.pipeline_list()
        return [(p.name, p.name) for p in names]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Execution]) -> QuerySet:
        return queryset.filter(pipeline=self.value()) if self.value() else queryset


class LaneFilter(admin.SimpleListFilter):
    title = "lane"
    parameter_name = "lane"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(lane, lane) for lane in settings.EXECUTION_LANES]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Execution]) -> QuerySet:
        return queryset.filter(lane=self.value()) if self.value() else queryset


class CreatedRangeFilter(admin.FieldListFilter):
    """Created from / until (dates or ISO 8601 timestamps, UTC; "until" is exclusive),
    plus the last hour, day and week; the range a search can narrow further."""

    template = "admin/executions/date_range_filter.html"
    SPANS = (("1h", "Last hour", timedelta(hours=1)), ("24h", "Last 24 hours", timedelta(days=1)))
    SPANS += (("7d", "Last 7 days", timedelta(days=7)),)

    def __init__(
        self,
        field: Any,
        request: HttpRequest,
        params: dict[str, Any],
        model: Any,
        model_admin: Any,
        field_path: str,
    ) -> None:
        self.gte = f"{field_path}__gte"
        self.lt = f"{field_path}__lt"
        self.values: dict[str, str] = {}
        for name in (self.gte, self.lt):
            value = params.get(name)
            if isinstance(value, list):
                value = value[-1] if value else None
            if value:
                self.values[name] = str(value)
        super().__init__(field, request, params, model, model_admin, field_path)
        self.title = "created"

    def expected_parameters(self) -> list[str]:
        return [self.gte, self.lt]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        bounds = {}
        for name, value in self.values.items():
            try:
                bounds[name] = parse_iso(value)
            except ValueError as exc:
                raise IncorrectLookupParameters(str(exc)) from exc
        return queryset.filter(**bounds)

    def choices(self, changelist: Any) -> Any:
        self.range = self.range_form(changelist)  # the template's from / until form
        yield {
            "selected": not self.values,
            "query_string": changelist.get_query_string(remove=[self.gte, self.lt]),
            "display": "Any time",
        }
        now = utc_now()
        for key, label, span in self.SPANS:
            since = format_iso(now - span)
            yield {
                "selected": False,
                "query_string": changelist.get_query_string(
                    {self.gte: since.split(".")[0] + "Z"}, remove=[self.lt]
                ),
                "display": label,
                "key": key,
            }

    def range_form(self, changelist: Any) -> dict[str, Any]:
        keep = {
            k: v for k, v in changelist.get_filters_params().items() if k not in (self.gte, self.lt)
        }
        if changelist.query:
            keep["q"] = changelist.query
        return {
            "gte": self.gte,
            "lt": self.lt,
            "gte_value": self.values.get(self.gte, ""),
            "lt_value": self.values.get(self.lt, ""),
            "hidden": [(k, v[-1] if isinstance(v, list) else v) for k, v in keep.items()],
        }


def search_filter(term: str) -> Q:
    """An execution by id (whole, or a fragment of six or more hex digits, with or
    without hyphens as pasted from logs), by text in its params, or in its error."""
    term = term.strip()
    condition = Q(params_text__icontains=term) | Q(error__icontains=term)
    try:
        condition |= Q(pk=uuid.UUID(term))
    except ValueError:
        if _HEXISH.match(term):
            fragment = term.lower()
            condition |= Q(id_text__contains=fragment) | Q(
                id_text__contains=fragment.replace("-", "")
            )
    return condition


# --- inlines ------------------------------------------------------------------------------


class ExecutionEventInline(admin.TabularInline):
    """The execution's history, oldest first; read-only, never edited or deleted."""

    model = ExecutionEvent
    fields = ("when", "type", "data_display")
    readonly_fields = fields
    ordering = ("timestamp", "id")
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = False
    verbose_name = "event"
    verbose_name_plural = "event timeline"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="timestamp")
    def when(self, event: ExecutionEvent) -> SafeString | str:
        return timestamp(event.timestamp)

    @admin.display(description="data")
    def data_display(self, event: ExecutionEvent) -> SafeString | str:
        if not event.data:
            return "—"
        return format_html(
            '<code class="spine-data">{}</code>',
            json.dumps(event.data, sort_keys=True, default=str),
        )


# --- actions ------------------------------------------------------------------------------


ACTIONS: dict[str, dict[str, Any]] = {
    "cancel": {
        "label": "Cancel",
        "verb": "cancelled",
        "form": CancelForm,
        "intro": "Each pending, queued or running execution below will be cancelled: a "
        "queued message is withdrawn, a running handler stops within a heartbeat. "
        "Executions that already ended are skipped.",
    },
    "rerun": {
        "label": "Re-run",
        "verb": "re-run",
        "form": RerunForm,
        "intro": "Each execution below runs again as a NEW execution with the same pipeline, "
        "params and lane (trigger: admin, parent: the original). The original stays as it is.",
    },
}


def _plan(action: str, execution: Execution) -> dict[str, Any]:
    """What ``action`` will do to one execution, for the confirmation page."""
    shown = {
        "params_json": json.dumps(execution.params, sort_keys=True, default=str),
        "created": timestamp(execution.created_at),
    }
    return {**_outcome(action, execution), **shown}


def _outcome(action: str, execution: Execution) -> dict[str, str]:
    if action == "cancel":
        if execution.status in TERMINAL_STATUSES:
            return {"outcome": "skip", "reason": f"already {execution.get_status_display()}"}
        return {"outcome": "run", "reason": f"cancelled (now {execution.get_status_display()})"}
    open_letter = execution.dead_letters.filter(resolved_at__isnull=True).first()
    if open_letter is not None:
        return {
            "outcome": "run",
            "reason": f"re-run; its dead letter #{open_letter.pk} stays open "
            "(replay from the dead letter instead to resolve it with a link)",
        }
    return {"outcome": "run", "reason": "re-run as a new execution"}


# --- the model admin -------------------------------------------------------------------------


@admin.register(Execution)
class ExecutionAdmin(ConfirmedActionsMixin, ReadOnlyAdmin):
    list_display = (
        "short_id",
        "status_display",
        "pipeline",
        "lane",
        "trigger_source",
        "duration_display",
        "attempt",
        "created_display",
    )
    list_display_links = ("short_id", "pipeline")
    empty_value_display = "—"  # as the other empty fields on the page show it
    list_filter = (
        "status",
        PipelineFilter,
        LaneFilter,
        "trigger_source",
        ("created_at", CreatedRangeFilter),
    )
    search_fields = ("error",)  # the real search is get_search_results
    search_help_text = "Execution id (or a fragment of it), text in its params, or its error."
    ordering = ("-created_at", "-id")
    actions = ("cancel_selected", "rerun_selected")
    confirmed_actions = ACTIONS
    confirmation_template = "admin/executions/execution/action_confirmation.html"
    inlines = (ExecutionEventInline,)
    change_list_template = "admin/executions/execution/change_list.html"
    change_form_template = "admin/executions/execution/change_form.html"
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "id",
                    "pipeline",
                    "status_display",
                    "lane",
                    "trigger_source",
                    "attempt",
                    "request_id",
                    "lock_key",
                    "parent_display",
                    "children_display",
                    "dead_letters_display",
                )
            },
        ),
        (
            "Timing",
            {
                "fields": (
                    "created_display",
                    "queued_display",
                    "started_display",
                    "finished_display",
                    "heartbeat_display",
                    "run_after_display",
                    "duration_display",
                    "submissions",
                    "redeliveries",
                )
            },
        ),
        ("Steps", {"fields": ("timeline_display",)}),
        ("Params", {"fields": ("params_display",)}),
        ("Result", {"fields": ("result_display",)}),
        ("Error", {"fields": ("error_display", "traceback_display")}),
    )
    # Every field shown is read-only: the ledger changes only through services.
    readonly_fields = tuple(name for _, section in fieldsets for name in section["fields"])

    # -- permissions: the ledger is never written by hand (ReadOnlyAdmin); executions
    # are created by the Dispatcher ("Run pipeline"), deleted only by retention.

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(CANCEL_PERMISSION)

    def has_rerun_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(RERUN_PERMISSION)

    def has_launch_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(LAUNCH_PERMISSION)

    # -- list columns -------------------------------------------------------------------

    @admin.display(description="id", ordering="id")
    def short_id(self, obj: Execution) -> str:
        return str(obj.pk)[:8]

    @admin.display(description="status", ordering="status")
    def status_display(self, obj: Execution) -> SafeString:
        return status_badge(obj.status)

    @admin.display(description="duration")
    def duration_display(self, obj: Execution) -> SafeString | str:
        if obj.duration_seconds is None and obj.status == ExecutionStatus.RUNNING:
            started = obj.started_at or obj.created_at
            running_for = human_duration((utc_now() - started).total_seconds())
            return format_html('<span class="spine-quiet">running {}</span>', running_for)
        return human_duration(obj.duration_seconds)

    @admin.display(description="created", ordering="created_at")
    def created_display(self, obj: Execution) -> SafeString | str:
        return timestamp(obj.created_at)

    @admin.display(description="queued at")
    def queued_display(self, obj: Execution) -> SafeString | str:
        return timestamp(obj.queued_at)

    @admin.display(description="started at")
    def started_display(self, obj: Execution) -> SafeString | str:
        return timestamp(obj.started_at)

    @admin.display(description="finished at")
    def finished_display(self, obj: Execution) -> SafeString | str:
        return timestamp(obj.finished_at)

    @admin.display(description="last heartbeat")
    def heartbeat_display(self, obj: Execution) -> SafeString | str:
        return timestamp(obj.heartbeat_at)

    @admin.display(description="not before")
    def run_after_display(self, obj: Execution) -> SafeString | str:
        return timestamp(obj.run_after)

    # -- detail fields ----------------------------------------------------------------------

    @admin.display(description="parent")
    def parent_display(self, obj: Execution) -> SafeString | str:
        if obj.parent_id is None:
            return "—"
        return format_html(
            "{} {}",
            execution_link(obj.parent_id, execution_label(obj.parent)),
            status_badge(obj.parent.status),
        )

    @admin.display(description="children")
    def children_display(self, obj: Execution) -> SafeString | str:
        children = list(obj.children.order_by("created_at", "id")[: CHILDREN_SHOWN + 1])
        if not children:
            return "—"
        shown = children[:CHILDREN_SHOWN]
        items = format_html_join(
            "",
            "<li>{} {} <span class='spine-quiet'>{}</span></li>",
            (
                (execution_link(c.pk, execution_label(c)), status_badge(c.status), c.trigger_source)
                for c in shown
            ),
        )
        more = ""
        if len(children) > CHILDREN_SHOWN:
            url = reverse("admin:executions_execution_changelist") + f"?parent__id__exact={obj.pk}"
            more = format_html('<li><a href="{}">all children…</a></li>', url)
        return format_html('<ul class="spine-list">{}{}</ul>', items, more)

    @admin.display(description="dead letters")
    def dead_letters_display(self, obj: Execution) -> SafeString | str:
        letters = list(obj.dead_letters.order_by("created_at", "id"))
        if not letters:
            return "—"
        rows = []
        for letter in letters:
            url = _dead_letter_url(letter.pk)
            label = f"#{letter.pk} ({letter.state_label})"
            rows.append((format_html('<a href="{}">{}</a>', url, label) if url else label,))
        return format_html_join(", ", "{}", rows)

    @admin.display(description="timeline")
    def timeline_display(self, obj: Execution) -> SafeString:
        return step_timeline(obj)

    @admin.display(description="params")
    def params_display(self, obj: Execution) -> SafeString | str:
        return pretty_json(obj.params)

    @admin.display(description="result")
    def result_display(self, obj: Execution) -> SafeString | str:
        return pretty_json(obj.result)

    @admin.display(description="error")
    def error_display(self, obj: Execution) -> SafeString | str:
        if not obj.error:
            return "—"
        return format_html('<pre class="spine-pre spine-error">{}</pre>', obj.error)

    @admin.display(description="traceback")
    def traceback_display(self, obj: Execution) -> SafeString | str:
        if not obj.traceback:
            return "—"
        return format_html('<pre class="spine-pre">{}</pre>', obj.traceback)

    # -- search -------------------------------------------------------------------------------

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Execution], search_term: str
    ) -> tuple[QuerySet[Execution], bool]:
        if not search_term.strip():
            return queryset, False
        annotated = queryset.annotate(
            id_text=Cast("id", output_field=CharField()),
            params_text=Cast("params", output_field=TextField()),
        )
        return annotated.filter(search_filter(search_term)), False

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        # "all children…" links filter by parent; the overview links by creation time.
        if lookup in ("parent__id__exact", "created_at__gte", "created_at__lt"):
            return True
        return super().lookup_allowed(lookup, value, request)

    # -- pages ---------------------------------------------------------------------------------

    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        return [
            path("run/", wrap(self.launch_view), name="executions_execution_run"),
            *super().get_urls(),
        ]

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        context = {
            "can_launch": self.has_launch_permission(request),
            **workers_panel(request),
            **(extra_context or {}),
        }
        response = super().changelist_view(request, extra_context=context)
        changelist = getattr(response, "context_data", {}).get("cl")
        if changelist is not None:
            shown = list(changelist.result_list)
            if any(is_live(e.status) for e in shown):
                response.context_data["refresh_seconds"] = REFRESH_SECONDS
        return response

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        execution = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if execution is not None:
            context.update(
                {
                    "execution": execution,
                    "can_cancel": not execution.is_terminal and self.has_cancel_permission(request),
                    "can_rerun": self.has_rerun_permission(request),
                    "refresh_seconds": REFRESH_SECONDS if _page_is_live(execution) else None,
                    "show_save": False,
                    "show_save_and_continue": False,
                    "show_save_and_add_another": False,
                    "show_delete": False,
                }
            )
        return super().change_view(request, object_id, form_url, extra_context=context)

    # -- actions: cancel and re-run -------------------------------------------------------------

    @admin.action(description="Cancel selected executions", permissions=["cancel"])
    def cancel_selected(
        self, request: HttpRequest, queryset: QuerySet[Execution]
    ) -> HttpResponse | None:
        return self.confirm_selected(request, "cancel", queryset)

    @admin.action(description="Re-run selected executions", permissions=["rerun"])
    def rerun_selected(
        self, request: HttpRequest, queryset: QuerySet[Execution]
    ) -> HttpResponse | None:
        return self.confirm_selected(request, "rerun", queryset)

    def plan_action(self, action: str, obj: Execution) -> dict[str, str]:
        return _plan(action, obj)

    def apply_action(
        self, request: HttpRequest, action: str, obj: Execution, data: dict[str, Any]
    ) -> tuple[SafeString | str, Execution] | None:
        """Cancel through the Dispatcher; re-run as a new execution, whose page comes next."""
        try:
            if action == "cancel":
                cancel(obj, by=request.user.get_username(), reason=data.get("reason", ""))
                return execution_link(obj.pk, execution_label(obj)), obj
            wanted = selectors.pipeline_get(obj.pipeline)
            if not wanted.may_launch(request.user):
                raise ValueError(f"it needs the {wanted.launch_permission} permission")
            new = dispatch(
                obj.pipeline,
                wanted.launched_by(request.user, obj.params),
                trigger_source=TriggerSource.ADMIN,
                parent=obj,
                lane=obj.lane,
                request_id=get_request_id(),
            )
            old = execution_link(obj.pk, execution_label(obj))
            return format_html("{} → {}", old, _link_new(new)), new
        except IllegalTransition:
            obj.refresh_from_db()
            self.message_user(
                request,
                f"{obj.pipeline} {str(obj.pk)[:8]} is {obj.status} and can no longer be cancelled.",
                messages.WARNING,
            )
        except (UnknownPipeline, InvalidParams, ValueError) as exc:
            self.message_user(
                request,
                f"{obj.pipeline} {str(obj.pk)[:8]} cannot be re-run: {exc}",
                messages.ERROR,
            )
        return None

    # -- the "Run pipeline" page -----------------------------------------------------------------

    def launch_view(self, request: HttpRequest) -> HttpResponse:
        """Pick a registered pipeline, fill in its params, dispatch it."""
        if not self.has_launch_permission(request):
            raise PermissionDenied
        name = request.POST.get("pipeline") or request.GET.get("pipeline") or ""
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Run a pipeline",
            "pipelines": [p for p in selectors.pipeline_list() if p.may_launch(request.user)],
            "selected": None,
        }
        if not name:
            return TemplateResponse(request, "admin/executions/execution/run.html", context)
        try:
            pipeline = selectors.pipeline_get(name)
        except UnknownPipeline as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return TemplateResponse(request, "admin/executions/execution/run.html", context)
        if not pipeline.may_launch(request.user):
            self.message_user(
                request,
                f"starting {pipeline.name} needs the {pipeline.launch_permission} permission",
                messages.ERROR,
            )
            return TemplateResponse(
                request, "admin/executions/execution/run.html", context, status=403
            )
        form_class = params_form_class(pipeline)
        posted = request.method == "POST"
        form = form_class(request.POST if posted else None, prefix="params")
        lane_form = LaneForm(request.POST if posted else None, prefix="run")
        if posted and form.is_valid() and lane_form.is_valid():
            try:
                execution = dispatch(
                    pipeline.name,
                    pipeline.launched_by(request.user, form.params()),
                    trigger_source=TriggerSource.ADMIN,
                    lane=lane_form.cleaned_data["lane"] or None,
                    request_id=get_request_id(),
                )
            except InvalidParams as exc:
                form.apply_errors(exc)
            except ValueError as exc:
                lane_form.add_error("lane", str(exc))
            else:
                self.message_user(
                    request,
                    format_html(
                        "{} dispatched: {} {}",
                        pipeline.name,
                        execution_link(execution.pk, execution_label(execution)),
                        status_badge(execution.status),
                    ),
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(execution_url(execution.pk))
        context.update(
            {
                "title": f"Run {pipeline.name}",
                "selected": pipeline,
                "form": form,
                "lane_form": lane_form,
                "schema": pipeline.params_schema(),
            }
        )
        return TemplateResponse(request, "admin/executions/execution/run.html", context)


def _page_is_live(execution: Execution) -> bool:
    """The execution or one of the children on its page has not ended yet."""
    if is_live(execution.status):
        return True
    return execution.children.exclude(status__in=TERMINAL_STATUSES).exists()


def _link_new(execution: Execution) -> SafeString:
    link = execution_link(execution.pk, execution_label(execution))
    return format_html("{} {}", link, status_badge(execution.status))


@admin.register(ExecutionLock)
class ExecutionLockAdmin(ReadOnlyAdmin):
    """Who holds which concurrency key, until when; read-only (locks expire by design)."""

    list_display = ("key", "holder", "acquired_display", "expires_display")
    search_fields = ("key",)
    ordering = ("-acquired_at", "key")
    list_select_related = ("execution",)

    @admin.display(description="acquired", ordering="acquired_at")
    def acquired_display(self, obj: ExecutionLock) -> SafeString | str:
        return timestamp(obj.acquired_at)

    @admin.display(description="expires", ordering="expires_at")
    def expires_display(self, obj: ExecutionLock) -> SafeString | str:
        return timestamp(obj.expires_at)

    @admin.display(description="held by")
    def holder(self, obj: ExecutionLock) -> SafeString | str:
        return format_html(
            "{} {}",
            execution_link(obj.execution_id, execution_label(obj.execution)),
            status_badge(obj.execution.status),
        )


__all__ = ["ExecutionAdmin", "execution_label", "format_duration", "status_badge", "timestamp"]
