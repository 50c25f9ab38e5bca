"""The dead-letter admin: find a failure, read it, replay, resolve or discard it (docs/dlq.md)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.text import Truncator

from dlq import selectors, services
from dlq.admin_console import DeadLetterConsoleMixin
from dlq.errors import DeadLetterError
from dlq.models import DeadLetter, Resolution
from executions.registry import registry
from spine.admin import ConfirmedActionsMixin, execution_admin_url, execution_link
from spine.templatetags.spine_console import spine_time
from spine.time import utc_now

REPLAY_PERMISSION = "dlq.replay_deadletter"
CHANGE_PERMISSION = "dlq.change_deadletter"


# --- links -------------------------------------------------------------------------


def letter_link(letter: DeadLetter) -> SafeString:
    url = reverse("admin:dlq_deadletter_change", args=[letter.pk])
    return format_html('<a href="{}">#{}</a>', url, letter.pk)


# --- list filters ----------------------------------------------------------------------


class StateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            ("open", "Open"),
            ("resolved", "Resolved (any)"),
            *[(f"resolution:{value}", label) for value, label in Resolution.choices],
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[DeadLetter]) -> QuerySet:
        value = self.value()
        if value == "open":
            return queryset.filter(resolved_at__isnull=True)
        if value == "resolved":
            return queryset.filter(resolved_at__isnull=False)
        if value and value.startswith("resolution:"):
            return queryset.filter(resolution=value.split(":", 1)[1])
        return queryset


class SignatureFilter(admin.SimpleListFilter):
    """A group of letters failing the same way; any signature is accepted in the URL."""

    title = "group (error signature)"
    parameter_name = "signature"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        choices = [(sig, f"{label} ({count})") for sig, label, count in selectors.open_signatures()]
        value = self.value()
        if value and value not in {sig for sig, _ in choices}:
            choices.append((value, value))
        return choices

    def queryset(self, request: HttpRequest, queryset: QuerySet[DeadLetter]) -> QuerySet:
        value = self.value()
        return queryset.filter(signature=value) if value else queryset


class ErrorClassFilter(admin.SimpleListFilter):
    title = "error class"
    parameter_name = "error_class"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(name, name) for name in selectors.error_classes()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[DeadLetter]) -> QuerySet:
        value = self.value()
        return queryset.filter(error_class=value) if value else queryset


class AgeFilter(admin.SimpleListFilter):
    """How long ago the failure was parked (the admin's date filter counts calendar days)."""

    title = "age"
    parameter_name = "age"
    SPANS = {
        "1h": ("Less than an hour", timedelta(hours=1), True),
        "24h": ("Less than a day", timedelta(days=1), True),
        "7d": ("Less than a week", timedelta(days=7), True),
        "gt7d": ("Older than a week", timedelta(days=7), False),
        "gt30d": ("Older than 30 days", timedelta(days=30), False),
    }

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(key, label) for key, (label, _, _) in self.SPANS.items()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[DeadLetter]) -> QuerySet:
        span = self.SPANS.get(self.value() or "")
        if span is None:
            return queryset
        _, delta, newer = span
        cutoff = utc_now() - delta
        return (
            queryset.filter(created_at__gte=cutoff)
            if newer
            else queryset.filter(created_at__lt=cutoff)
        )


# --- confirmation forms --------------------------------------------------------------------


class ReplayForm(forms.Form):
    force = forms.BooleanField(
        required=False,
        label="Force replay of letters that are over their retry budget",
    )


class ResolveForm(forms.Form):
    note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        help_text="Required: how the failure was handled.",
    )


class DiscardForm(forms.Form):
    note = forms.CharField(
        label="Reason",
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        help_text="Required: why the run is not wanted (kept on the letter).",
    )


ACTIONS: dict[str, dict[str, Any]] = {
    "replay": {
        "label": "Replay",
        "verb": "replayed",
        "form": ReplayForm,
        "intro": "Each open letter below will run again as a NEW execution "
        "(trigger: retry, parent: the failed execution); the letter is then "
        "resolved with a link to it.",
    },
    "replay_paced": {
        "label": "Replay at the rate cap",
        "verb": "queued for a paced replay",
        "form": ReplayForm,
        "intro": "The open letters below will be replayed in this order by one batch "
        "(a dlq.replay_batch execution) at most SPINE_REPLAY_RATE a minute; each "
        "becomes a NEW execution as with Replay. The batch's page shows its progress.",
    },
    "resolve": {
        "label": "Resolve",
        "verb": "resolved",
        "form": ResolveForm,
        "intro": "The open letters below will be closed as handled, with your note. Nothing runs.",
    },
    "discard": {
        "label": "Discard",
        "verb": "discarded",
        "form": DiscardForm,
        "intro": "The open letters below will be closed without running again.",
    },
}


def plan(action: str, letter: DeadLetter) -> dict[str, str]:
    """What ``action`` will do to one letter, for the confirmation page."""
    params_json = json.dumps(letter.params, indent=2, sort_keys=True, default=str)
    if not letter.is_open:
        outcome, reason = "skip", f"already {letter.state_label}"
    elif action in ("replay", "replay_paced") and letter.over_max_retries:
        outcome, reason = (
            "force",
            f"over its retry budget (attempt {letter.attempts}, "
            f"{letter.max_retries} automatic retries allowed): runs only if forced",
        )
    elif action in ("replay", "replay_paced"):
        outcome, reason = "run", f"runs as attempt {letter.attempts + 1}"
    else:
        outcome, reason = "run", ACTIONS[action]["verb"]
    return {"outcome": outcome, "reason": reason, "params_json": params_json}


# --- the model admin ---------------------------------------------------------------


@admin.register(DeadLetter)
class DeadLetterAdmin(DeadLetterConsoleMixin, ConfirmedActionsMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "pipeline",
        "failure_kind",
        "short_error",
        "attempts_display",
        "state_display",
        "created_display",
        "next_retry_display",
        "execution_short_display",
    )
    list_display_links = ("id", "pipeline")
    list_filter = (
        StateFilter,
        SignatureFilter,
        ErrorClassFilter,
        "pipeline",
        "failure_kind",
        AgeFilter,
        ("created_at", admin.DateFieldListFilter),
    )
    search_fields = ("error",)  # the real search is get_search_results (selectors)
    search_help_text = "Dead letter id, execution id (or a fragment of it), or error text."
    list_select_related = ("execution", "replay_execution", "resolved_by")
    list_per_page = 50
    date_hierarchy = None
    ordering = ("-created_at", "-id")
    actions = (
        "replay_selected",
        "replay_paced_selected",
        "resolve_selected",
        "discard_selected",
    )
    confirmed_actions = ACTIONS
    confirmation_template = "admin/dlq/deadletter/action_confirmation.html"
    confirmation_css = "dlq"
    change_form_template = "admin/dlq/deadletter/change_form.html"
    change_list_template = "admin/dlq/deadletter/change_list.html"
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "state_display",
                    "pipeline",
                    "failure_kind",
                    "error_class",
                    "signature_display",
                    "attempts_display",
                    "execution_display",
                    "replay_execution_display",
                    "previous_display",
                )
            },
        ),
        (
            "History",
            {
                "fields": (
                    "created_display",
                    "next_retry_display",
                    "last_retry_display",
                    "resolved_display",
                    "resolution",
                    "resolved_by",
                    "note",
                )
            },
        ),
    )
    readonly_fields = (
        "state_display",
        "pipeline",
        "failure_kind",
        "error_class",
        "signature_display",
        "attempts_display",
        "execution_display",
        "replay_execution_display",
        "previous_display",
        "created_display",
        "next_retry_display",
        "last_retry_display",
        "resolved_display",
        "resolution",
        "resolved_by",
        "note",
    )

    # -- times: seconds and time zone, ISO 8601 in the tooltip ------------------------

    @admin.display(description="created", ordering="created_at")
    def created_display(self, obj: DeadLetter) -> SafeString | str:
        return spine_time(obj.created_at)

    @admin.display(description="next retry", ordering="next_retry_at")
    def next_retry_display(self, obj: DeadLetter) -> SafeString | str:
        return spine_time(obj.next_retry_at)

    @admin.display(description="last retry", ordering="last_retry_at")
    def last_retry_display(self, obj: DeadLetter) -> SafeString | str:
        return spine_time(obj.last_retry_at)

    @admin.display(description="resolved", ordering="resolved_at")
    def resolved_display(self, obj: DeadLetter) -> SafeString | str:
        return spine_time(obj.resolved_at)

    # -- permissions: letters are never edited, added or deleted by hand --------------

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Read-only by design: a form save would bypass the services and could
        # overwrite a concurrent replay. Actions check their own permissions.
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # retention purges closed letters; operators discard

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_view_permission(request, obj) or request.user.has_perm(REPLAY_PERMISSION)

    def has_replay_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(REPLAY_PERMISSION)

    def has_resolve_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(CHANGE_PERMISSION)

    # -- list columns ----------------------------------------------------------------

    @admin.display(description="error")
    def short_error(self, obj: DeadLetter) -> str:
        first_line = (obj.error or "").strip().splitlines()[:1]
        return Truncator(first_line[0] if first_line else "").chars(90)

    @admin.display(description="attempts", ordering="attempts")
    def attempts_display(self, obj: DeadLetter) -> str:
        return obj.attempts_label

    @admin.display(description="state", ordering="resolved_at")
    def state_display(self, obj: DeadLetter) -> SafeString:
        if obj.is_open:
            waiting = "automatic retry due" if obj.next_retry_at else "waiting for a person"
            return format_html("<strong>open</strong> · {}", waiting)
        if obj.resolution == Resolution.REPLAYED and obj.replay_execution_id:
            return format_html(
                "replayed → {}", execution_link(obj.replay_execution_id, "new execution")
            )
        return format_html("{}", obj.state_label)

    @admin.display(description="group (signature)")
    def signature_display(self, obj: DeadLetter) -> SafeString | str:
        if not obj.signature:
            return "—"
        url = reverse("admin:dlq_deadletter_changelist")
        return format_html(
            '<a href="{}?state=open&amp;signature={}"><code>{}</code></a>',
            url,
            obj.signature,
            obj.signature,
        )

    @admin.display(description="failed execution")
    def execution_display(self, obj: DeadLetter) -> SafeString | str:
        return execution_link(obj.execution_id)

    @admin.display(description="execution")
    def execution_short_display(self, obj: DeadLetter) -> SafeString | str:
        """The list's column: the id's first 8 characters, as the executions list shows it."""
        return execution_link(obj.execution_id, str(obj.execution_id)[:8])

    @admin.display(description="replay execution")
    def replay_execution_display(self, obj: DeadLetter) -> SafeString | str:
        if obj.replay_execution_id is None:
            return "—"
        status = obj.replay_execution.status if obj.replay_execution else "?"
        return format_html("{} ({})", execution_link(obj.replay_execution_id), status)

    @admin.display(description="previous dead letter")
    def previous_display(self, obj: DeadLetter) -> SafeString | str:
        return letter_link(obj.previous) if obj.previous_id and obj.previous else "—"

    # -- search through the selector ---------------------------------------------------

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[DeadLetter], search_term: str
    ) -> tuple[QuerySet[DeadLetter], bool]:
        return selectors.search_dead_letters(queryset, search_term), False

    # -- the detail page -------------------------------------------------------------------

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        letter = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if letter is not None:
            context.update(self._detail_context(request, letter))
        return super().change_view(request, object_id, form_url, extra_context=context)

    def _detail_context(self, request: HttpRequest, letter: DeadLetter) -> dict[str, Any]:
        execution = letter.execution
        events = [
            {
                "timestamp": event.timestamp,
                "type": event.type,
                "data": json.dumps(event.data, sort_keys=True, default=str) if event.data else "",
            }
            for event in selectors.execution_timeline(execution.pk)
        ]
        children = [
            {"link": execution_link(child.pk), "child": child}
            for child in selectors.execution_children(execution.pk)
        ]
        lineage = [
            {"letter": item, "link": letter_link(item), "current": item.pk == letter.pk}
            for item in selectors.dead_letter_lineage(letter)
        ]
        can_replay = letter.is_open and self.has_replay_permission(request)
        can_close = letter.is_open and self.has_resolve_permission(request)
        return {
            "letter": letter,
            "failed_execution": execution,
            "failed_execution_link": execution_link(execution.pk),
            "parent_link": execution_link(execution.parent_id) if execution.parent_id else None,
            "children": children,
            "lineage": lineage if len(lineage) > 1 else [],
            "events": events,
            "params_json": json.dumps(letter.params, indent=2, sort_keys=True, default=str),
            "execution_admin_available": execution_admin_url(execution.pk) is not None,
            "can_replay": can_replay,
            "can_close": can_close,
            "can_edit_replay": can_replay and obj_pipeline_known(letter),
            "original_params_json": json.dumps(
                letter.original_params, indent=2, sort_keys=True, default=str
            )
            if letter.original_params is not None
            else "",
            "params_changes": [
                {
                    **change,
                    "rows": [
                        {
                            "key": key,
                            "old": json.dumps(d.get("old"), default=str),
                            "new": json.dumps(d.get("new"), default=str),
                        }
                        for key, d in (change.get("diff") or {}).items()
                    ],
                }
                for change in letter.params_changes or []
            ],
            "show_save": False,
            "show_save_and_continue": False,
            "show_save_and_add_another": False,
            "show_delete": False,
        }

    # -- replay / resolve / discard, from the list or a letter's page (ConfirmedActionsMixin)

    @admin.action(description="Replay selected dead letters", permissions=["replay"])
    def replay_selected(
        self, request: HttpRequest, queryset: QuerySet[DeadLetter]
    ) -> HttpResponse | None:
        # Replaying at once is for a handful: more than a minute's budget goes paced.
        rate = services.replay_rate()
        if queryset.count() > rate:
            self.message_user(
                request,
                f"more than SPINE_REPLAY_RATE ({rate}) letters selected: use "
                "“Replay selected dead letters at the rate cap” to replay them paced.",
                messages.WARNING,
            )
            return None
        return self.confirm_selected(request, "replay", queryset)

    @admin.action(description="Resolve selected dead letters", permissions=["resolve"])
    def resolve_selected(
        self, request: HttpRequest, queryset: QuerySet[DeadLetter]
    ) -> HttpResponse | None:
        return self.confirm_selected(request, "resolve", queryset)

    @admin.action(description="Discard selected dead letters", permissions=["resolve"])
    def discard_selected(
        self, request: HttpRequest, queryset: QuerySet[DeadLetter]
    ) -> HttpResponse | None:
        return self.confirm_selected(request, "discard", queryset)

    def plan_action(self, action: str, obj: DeadLetter) -> dict[str, str]:
        return plan(action, obj)

    def link_execution(self, execution_id: Any, label: str | None = None) -> SafeString | str:
        return execution_link(execution_id, label)

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> Any:
        context = {"groups_url": reverse("admin:dlq_deadletter_groups"), **(extra_context or {})}
        return super().changelist_view(request, extra_context=context)

    def apply_action(
        self, request: HttpRequest, action: str, obj: DeadLetter, data: dict[str, Any]
    ) -> tuple[SafeString, DeadLetter] | None:
        """Through the services, as the API and the ``dlq`` command do."""
        try:
            if action == "replay":
                execution = services.retry(obj, by=request.user, force=data["force"])
                return format_html("{} → {}", letter_link(obj), execution_link(execution.pk)), obj
            if action == "replay_paced":
                batch = services.submit_replay_batch(
                    [obj], by=request.user, trigger_source="admin", force=data["force"]
                )
                return format_html(
                    '{} → <a href="{}">batch {}</a>',
                    letter_link(obj),
                    self.batch_url(batch.pk),
                    str(batch.pk)[:8],
                ), obj
            if action == "resolve":
                services.resolve(obj, by=request.user, note=data["note"])
            else:
                services.discard(obj, by=request.user, note=data.get("note", ""))
        except DeadLetterError as exc:
            self.message_user(request, str(exc), messages.WARNING)
            return None
        return letter_link(obj), obj


def obj_pipeline_known(letter: DeadLetter) -> bool:
    """Whether the letter's pipeline is still registered (its params form can be built)."""
    return letter.pipeline in registry
