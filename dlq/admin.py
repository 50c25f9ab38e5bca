"""The dead-letter admin: find a failure, read it, replay, resolve or discard it.

Letters are read-only here: every change goes through :mod:`dlq.services` (the same
functions the API and the ``dlq`` command call), from the bulk actions on the list
or the buttons on a letter's page, each behind a confirmation page that says what
will happen to which letter. Only users with ``dlq.replay_deadletter`` see replay;
resolving and discarding need ``dlq.change_deadletter``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.text import Truncator

from dlq import selectors, services
from dlq.errors import DeadLetterError
from dlq.models import DeadLetter, Resolution
from spine.time import utc_now

REPLAY_PERMISSION = "dlq.replay_deadletter"
CHANGE_PERMISSION = "dlq.change_deadletter"


# --- links -------------------------------------------------------------------------


def execution_admin_url(execution_id: Any) -> str | None:
    """The execution's admin page, or None while no execution admin is registered."""
    try:
        return reverse("admin:executions_execution_change", args=[execution_id])
    except NoReverseMatch:
        return None


def execution_link(execution_id: Any, label: str | None = None) -> SafeString | str:
    """A link to an execution's admin page, or just its id when there is none."""
    if execution_id is None:
        return "—"
    text = label or str(execution_id)
    url = execution_admin_url(execution_id)
    if url is None:
        return format_html("<code>{}</code>", text)
    return format_html('<a href="{}"><code>{}</code></a>', url, text)


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
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        help_text="Optional: why the run is not wanted.",
    )


@dataclass(frozen=True)
class PlannedLetter:
    """One row of a confirmation page: the letter and what the action will do to it."""

    letter: DeadLetter
    outcome: str  # "run", "force" or "skip"
    reason: str

    @property
    def params_json(self) -> str:
        return json.dumps(self.letter.params, indent=2, sort_keys=True, default=str)


ACTIONS: dict[str, dict[str, Any]] = {
    "replay": {
        "label": "Replay",
        "verb": "replayed",
        "form": ReplayForm,
        "intro": "Each open letter below will run again as a NEW execution "
        "(trigger: retry, parent: the failed execution); the letter is then "
        "resolved with a link to it.",
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


def plan(action: str, letters: list[DeadLetter]) -> list[PlannedLetter]:
    """What ``action`` will do to each letter, for the confirmation page."""
    rows = []
    for letter in letters:
        if not letter.is_open:
            rows.append(PlannedLetter(letter, "skip", f"already {letter.state_label}"))
        elif action == "replay" and letter.over_max_retries:
            rows.append(
                PlannedLetter(
                    letter,
                    "force",
                    f"over its retry budget (attempt {letter.attempts}, "
                    f"{letter.max_retries} automatic retries allowed): runs only if forced",
                )
            )
        elif action == "replay":
            rows.append(PlannedLetter(letter, "run", f"runs as attempt {letter.attempts + 1}"))
        else:
            rows.append(PlannedLetter(letter, "run", ACTIONS[action]["verb"]))
    return rows


# --- the model admin ---------------------------------------------------------------


@admin.register(DeadLetter)
class DeadLetterAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "pipeline",
        "failure_kind",
        "short_error",
        "attempts_display",
        "state_display",
        "created_at",
        "next_retry_at",
        "execution_display",
    )
    list_display_links = ("id", "pipeline")
    list_filter = ("pipeline", "failure_kind", StateFilter, AgeFilter)
    search_fields = ("error",)  # the real search is get_search_results (selectors)
    search_help_text = "Dead letter id, execution id (or a fragment of it), or error text."
    list_select_related = ("execution", "replay_execution", "resolved_by")
    list_per_page = 50
    date_hierarchy = None
    ordering = ("-created_at", "-id")
    actions = ("replay_selected", "resolve_selected", "discard_selected")
    change_form_template = "admin/dlq/deadletter/change_form.html"
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "state_display",
                    "pipeline",
                    "failure_kind",
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
                    "created_at",
                    "next_retry_at",
                    "last_retry_at",
                    "resolved_at",
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
        "attempts_display",
        "execution_display",
        "replay_execution_display",
        "previous_display",
        "created_at",
        "next_retry_at",
        "last_retry_at",
        "resolved_at",
        "resolution",
        "resolved_by",
        "note",
    )

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

    def _allowed(self, request: HttpRequest, action: str) -> bool:
        if action == "replay":
            return self.has_replay_permission(request)
        return self.has_resolve_permission(request)

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

    @admin.display(description="failed execution")
    def execution_display(self, obj: DeadLetter) -> SafeString | str:
        return execution_link(obj.execution_id)

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
            "show_save": False,
            "show_save_and_continue": False,
            "show_save_and_add_another": False,
            "show_delete": False,
        }

    # -- per-letter action pages ---------------------------------------------------------

    def get_urls(self) -> list[Any]:
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        wrap = self.admin_site.admin_view
        return [
            *(
                path(
                    f"<path:object_id>/{action}/",
                    wrap(self.letter_action_view),
                    {"action": action},
                    name=f"{prefix}_{action}",
                )
                for action in ACTIONS
            ),
            *super().get_urls(),
        ]

    def letter_action_view(self, request: HttpRequest, object_id: str, action: str) -> HttpResponse:
        """Confirm, then replay / resolve / discard one letter (the detail page's buttons)."""
        if not self._allowed(request, action):
            raise PermissionDenied
        letter = get_object_or_404(DeadLetter, pk=object_id)
        form_class = ACTIONS[action]["form"]
        form = form_class(request.POST if request.method == "POST" else None)
        if request.method == "POST" and request.POST.get("post") == "yes" and form.is_valid():
            self._run(request, action, [letter], form.cleaned_data)
            return HttpResponseRedirect(reverse("admin:dlq_deadletter_change", args=[letter.pk]))
        return self._confirmation(request, action, [letter], form, bulk=False)

    # -- bulk actions on the list ---------------------------------------------------------

    @admin.action(description="Replay selected dead letters", permissions=["replay"])
    def replay_selected(
        self, request: HttpRequest, queryset: QuerySet[DeadLetter]
    ) -> HttpResponse | None:
        return self._bulk(request, "replay", queryset)

    @admin.action(description="Resolve selected dead letters", permissions=["resolve"])
    def resolve_selected(
        self, request: HttpRequest, queryset: QuerySet[DeadLetter]
    ) -> HttpResponse | None:
        return self._bulk(request, "resolve", queryset)

    @admin.action(description="Discard selected dead letters", permissions=["resolve"])
    def discard_selected(
        self, request: HttpRequest, queryset: QuerySet[DeadLetter]
    ) -> HttpResponse | None:
        return self._bulk(request, "discard", queryset)

    def _bulk(
        self, request: HttpRequest, action: str, queryset: QuerySet[DeadLetter]
    ) -> HttpResponse | None:
        letters = list(queryset.select_related("execution").order_by("created_at", "id"))
        form_class = ACTIONS[action]["form"]
        if request.POST.get("post") == "yes":
            form = form_class(request.POST)
            if form.is_valid():
                self._run(request, action, letters, form.cleaned_data)
                return None  # back to the list, with messages
        else:
            form = form_class()
        return self._confirmation(request, action, letters, form, bulk=True)

    def _confirmation(
        self,
        request: HttpRequest,
        action: str,
        letters: list[DeadLetter],
        form: forms.Form,
        *,
        bulk: bool,
    ) -> TemplateResponse:
        rows = plan(action, letters)
        spec = ACTIONS[action]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"{spec['label']} dead letters",
            "action": action,
            "action_label": spec["label"],
            "verb": spec["verb"],
            "action_name": f"{action}_selected",
            "intro": spec["intro"],
            "rows": rows,
            "runnable": sum(1 for row in rows if row.outcome == "run"),
            "forceable": sum(1 for row in rows if row.outcome == "force"),
            "skipped": sum(1 for row in rows if row.outcome == "skip"),
            "form": form,
            "bulk": bulk,
            "letter": letters[0] if not bulk and letters else None,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "select_across": request.POST.get("select_across", "0"),
        }
        return TemplateResponse(request, "admin/dlq/deadletter/action_confirmation.html", context)

    def _run(
        self,
        request: HttpRequest,
        action: str,
        letters: list[DeadLetter],
        data: dict[str, Any],
    ) -> None:
        """Apply the action to each letter through the services; report every outcome."""
        done: list[SafeString] = []
        for letter in letters:
            try:
                if action == "replay":
                    execution = services.retry(letter, by=request.user, force=data["force"])
                    done.append(
                        format_html("{} → {}", letter_link(letter), execution_link(execution.pk))
                    )
                elif action == "resolve":
                    services.resolve(letter, by=request.user, note=data["note"])
                    done.append(letter_link(letter))
                else:
                    services.discard(letter, by=request.user, note=data.get("note", ""))
                    done.append(letter_link(letter))
            except DeadLetterError as exc:
                self.message_user(request, str(exc), messages.WARNING)
        if done:
            verb = ACTIONS[action]["verb"]
            noun = "dead letter" if len(done) == 1 else "dead letters"
            self.message_user(
                request,
                format_html(
                    "{} {} {}: {}",
                    len(done),
                    noun,
                    verb,
                    format_html_join(", ", "{}", ((item,) for item in done)),
                ),
                messages.SUCCESS,
            )
