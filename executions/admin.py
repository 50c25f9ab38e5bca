"""The executions admin: watch executions, read their history, cancel, re-run, launch.

The ledger is read-only here: no add, change or delete of executions or events (a
form save would bypass the status machine and rewrite history). State changes go
through the same code as the API: cancelling through the Dispatcher's ``cancel``,
re-running and the "Run pipeline" page through ``dispatch`` with
``trigger_source="admin"``. Each action has a confirmation page and its own
permission (``executions.cancel_execution``, ``executions.rerun_execution``;
launching needs ``executions.add_execution``, as in the API).
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from django.conf import settings
from django.contrib import admin, messages
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
from spine.admin import ConfirmedActionsMixin, ReadOnlyAdmin, execution_link, pretty_json
from spine.context import get_request_id

CANCEL_PERMISSION = "executions.cancel_execution"
RERUN_PERMISSION = "executions.rerun_execution"
LAUNCH_PERMISSION = "executions.add_execution"
CHILDREN_SHOWN = 200
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


def format_duration(seconds: float | None) -> str:
    """``1.23 s``, ``4 min 05 s``, ``2 h 03 min``; ``—`` when not finished."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


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
    fields = ("timestamp", "type", "data_display")
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


def _plan(action: str, execution: Execution) -> dict[str, str]:
    """What ``action`` will do to one execution, for the confirmation page."""
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
        "created_at",
    )
    list_display_links = ("short_id", "pipeline")
    list_filter = ("status", PipelineFilter, LaneFilter, "trigger_source")
    date_hierarchy = "created_at"
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
                    "created_at",
                    "queued_at",
                    "started_at",
                    "finished_at",
                    "heartbeat_at",
                    "run_after",
                    "duration_display",
                    "submissions",
                    "redeliveries",
                )
            },
        ),
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
    def duration_display(self, obj: Execution) -> str:
        return format_duration(obj.duration_seconds)

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
        if lookup in ("parent__id__exact", "created_at__gte"):
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
        context = {"can_launch": self.has_launch_permission(request), **(extra_context or {})}
        return super().changelist_view(request, extra_context=context)

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
                obj.params,
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
                    form.params(),
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


def _link_new(execution: Execution) -> SafeString:
    link = execution_link(execution.pk, execution_label(execution))
    return format_html("{} {}", link, status_badge(execution.status))


@admin.register(ExecutionLock)
class ExecutionLockAdmin(ReadOnlyAdmin):
    """Who holds which concurrency key, until when; read-only (locks expire by design)."""

    list_display = ("key", "holder", "acquired_at", "expires_at")
    search_fields = ("key",)
    ordering = ("key",)
    list_select_related = ("execution",)

    @admin.display(description="held by")
    def holder(self, obj: ExecutionLock) -> SafeString | str:
        return format_html(
            "{} {}",
            execution_link(obj.execution_id, execution_label(obj.execution)),
            status_badge(obj.execution.status),
        )


__all__ = ["ExecutionAdmin", "execution_label", "format_duration", "status_badge"]
