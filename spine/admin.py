"""Admin building blocks shared by the apps (nothing is registered here; docs/operations.md)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.templatetags.admin_urls import admin_urlname
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from spine.paginators import EstimatedCountPaginator
from spine.text import quote


def execution_admin_url(execution_id: Any) -> str | None:
    """The execution's admin page, or None while no execution admin is registered."""
    try:
        return reverse("admin:executions_execution_change", args=[execution_id])
    except NoReverseMatch:
        return None


def execution_link(execution_id: Any, label: str | None = None) -> SafeString | str:
    """A link to an execution's admin page showing ``label`` (its id by default), or just
    the label when there is no such page."""
    if execution_id is None:
        return "—"
    text = label or str(execution_id)
    url = execution_admin_url(execution_id)
    if url is None:
        return format_html("<code>{}</code>", text)
    return format_html('<a href="{}"><code>{}</code></a>', url, text)


def pretty_json(value: Any) -> SafeString | str:
    """A JSON value as an indented block; ``—`` when empty."""
    if value in (None, {}, []):
        return "—"
    text = json.dumps(value, indent=2, sort_keys=True, default=str)
    return format_html('<pre class="spine-pre">{}</pre>', text)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Browse only; counted without full scans on big tables."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False
    list_per_page = 50

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ConfirmedActionsMixin(admin.ModelAdmin):
    """Actions that say what they will do to which object, and act only on "Yes".

    Each entry of ``confirmed_actions`` runs from the list (the admin action
    ``<name>_selected``, which calls :meth:`confirm_selected`) or from one object's page
    (``<pk>/<name>/``, URL name ``<app>_<model>_<name>``, guarded by the same
    permissions as the list action). Both show ``confirmation_template`` (extending
    ``admin/spine/action_confirmation.html``) with a row per object from
    :meth:`plan_action`, and change something only when posted with ``post=yes`` and
    a valid form, so a stray click or a reload never acts.
    """

    #: name -> {"label": "Cancel", "verb": "cancelled", "form": Form, "intro": "..."}
    confirmed_actions: dict[str, dict[str, Any]] = {}
    confirmation_template = "admin/spine/action_confirmation.html"
    #: Prefix of the page's ids and row classes, which its CSS and tests name.
    confirmation_css = "spine"
    #: The order a page lists, and the action applies to, the objects.
    confirmation_ordering: tuple[str, ...] = ("created_at", "id")

    def plan_action(self, action: str, obj: Any) -> dict[str, Any]:
        """One row: ``outcome`` ("run", "force" or "skip"), ``reason``, extras to show."""
        raise NotImplementedError

    def apply_action(
        self, request: HttpRequest, action: str, obj: Any, data: dict[str, Any]
    ) -> tuple[SafeString | str, Any] | None:
        """Act on one object: (how the success message names it, the object whose page
        comes next), or None once the reason it could not is reported to the user."""
        raise NotImplementedError

    def get_urls(self) -> list[Any]:
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        view = self.admin_site.admin_view(self.object_action_view)
        return [
            *(
                path(f"<path:object_id>/{name}/", view, {"action": name}, name=f"{prefix}_{name}")
                for name in self.confirmed_actions
            ),
            *super().get_urls(),
        ]

    def object_action_view(self, request: HttpRequest, object_id: str, action: str) -> HttpResponse:
        """Confirm, then apply ``action`` to one object (the buttons on its page)."""
        needed = getattr(self, f"{action}_selected").allowed_permissions
        if not all(getattr(self, f"has_{name}_permission")(request) for name in needed):
            raise PermissionDenied
        obj = self.get_object(request, object_id)
        if obj is None:
            raise Http404(f"No {self.opts.verbose_name} {quote(object_id)}")
        posted = request.method == "POST"
        form = self.confirmed_actions[action]["form"](request.POST if posted else None)
        if posted and request.POST.get("post") == "yes" and form.is_valid():
            landing = self._apply(request, action, [obj], form.cleaned_data) or obj
            return HttpResponseRedirect(
                reverse(admin_urlname(self.opts, "change"), args=[landing.pk])
            )
        return self._confirmation(request, action, [obj], form, bulk=False)

    def confirm_selected(
        self, request: HttpRequest, action: str, queryset: QuerySet
    ) -> HttpResponse | None:
        """The list's ``<name>_selected`` actions: confirm, then apply to every object."""
        objects = list(queryset.order_by(*self.confirmation_ordering))
        form_class = self.confirmed_actions[action]["form"]
        if request.POST.get("post") == "yes":
            form = form_class(request.POST)
            if form.is_valid():
                self._apply(request, action, objects, form.cleaned_data)
                return None  # back to the list, with messages
        else:
            form = form_class()
        return self._confirmation(request, action, objects, form, bulk=True)

    def _confirmation(
        self, request: HttpRequest, action: str, objects: list[Any], form: forms.Form, *, bulk: bool
    ) -> TemplateResponse:
        rows = [{"object": obj, **self.plan_action(action, obj)} for obj in objects]
        outcomes = Counter(row["outcome"] for row in rows)
        spec = self.confirmed_actions[action]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"{spec['label']} {self.opts.verbose_name_plural}",
            "action": action,
            "action_label": spec["label"],
            "verb": spec["verb"],
            "action_name": f"{action}_selected",
            "intro": spec["intro"],
            "css": self.confirmation_css,
            "rows": rows,
            "runnable": outcomes["run"],
            "forceable": outcomes["force"],
            "skipped": outcomes["skip"],
            "form": form,
            "bulk": bulk,
            "object": None if bulk else objects[0],
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "select_across": request.POST.get("select_across", "0"),
        }
        return TemplateResponse(request, self.confirmation_template, context)

    def _apply(
        self, request: HttpRequest, action: str, objects: list[Any], data: dict[str, Any]
    ) -> Any:
        """Apply ``action`` to each object; one success message names all that worked."""
        done: list[SafeString | str] = []
        landing = None
        for obj in objects:
            outcome = self.apply_action(request, action, obj, data)
            if outcome is not None:
                label, landing = outcome
                done.append(label)
        if done:
            noun = self.opts.verbose_name if len(done) == 1 else self.opts.verbose_name_plural
            items = format_html_join(", ", "{}", ((item,) for item in done))
            verb = self.confirmed_actions[action]["verb"]
            message = format_html("{} {} {}: {}", len(done), noun, verb, items)
            self.message_user(request, message, messages.SUCCESS)
        return landing
