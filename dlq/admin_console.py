"""The dead-letter console pages beyond the list: groups, paced replays, edit and replay.

A mixin of :class:`dlq.admin.DeadLetterAdmin`. Every page reads through
:mod:`dlq.selectors` and acts through :mod:`dlq.services`, behind a confirmation page,
with the permissions of the list's actions (replay: ``dlq.replay_deadletter``; discard:
``dlq.change_deadletter``; reading: view).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from dlq import selectors, services
from dlq.errors import DeadLetterError, ParamsRejected
from dlq.models import DeadLetter, FailureKind
from dlq.signature import is_signature
from executions.forms import params_form_class
from executions.models import Execution, TriggerSource
from executions.registry import InvalidParams, UnknownPipeline, registry
from spine.text import human_duration

GROUPS_PER_PAGE = 50
#: Letters listed on a group's confirmation page (the count covers them all).
GROUP_PREVIEW = 20


class PacedReplayForm(forms.Form):
    force = forms.BooleanField(
        required=False,
        label="Force replay of letters that are over their retry budget",
    )


class DiscardReasonForm(forms.Form):
    note = forms.CharField(
        label="Reason",
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        help_text="Required: why the runs are not wanted (kept on every letter).",
    )


class ConfirmEditForm(forms.Form):
    """The confirmed edit: the validated params as JSON, and the force box."""

    params_json = forms.CharField(widget=forms.HiddenInput)
    force = forms.BooleanField(
        required=False, label="Force the replay if the letter is over its retry budget"
    )

    def clean_params_json(self) -> dict[str, Any]:
        try:
            value = json.loads(self.cleaned_data["params_json"])
        except ValueError:
            raise forms.ValidationError("the edited params are not valid JSON.") from None
        if not isinstance(value, dict):
            raise forms.ValidationError("the edited params must be a JSON object.")
        return value


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


class DeadLetterConsoleMixin(admin.ModelAdmin):
    """Groups, group replay/discard, replay batches and edit-and-replay pages."""

    def get_urls(self) -> list[Any]:
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"

        def view(fn: Any) -> Any:
            return self.admin_site.admin_view(fn)

        return [
            path("groups/", view(self.groups_view), name=f"{prefix}_groups"),
            path(
                "groups/<str:signature>/replay/",
                view(self.group_replay_view),
                name=f"{prefix}_group_replay",
            ),
            path(
                "groups/<str:signature>/discard/",
                view(self.group_discard_view),
                name=f"{prefix}_group_discard",
            ),
            path("batches/<uuid:execution_id>/", view(self.batch_view), name=f"{prefix}_batch"),
            path(
                "<path:object_id>/edit-replay/",
                view(self.edit_replay_view),
                name=f"{prefix}_edit_replay",
            ),
            *super().get_urls(),
        ]

    # -- helpers ---------------------------------------------------------------------------

    def _url(self, name: str, *args: Any) -> str:
        return reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_{name}", args=args)

    def link_letter(self, letter_id: Any) -> SafeString:
        url = self._url("change", letter_id)
        return format_html('<a href="{}">#{}</a>', url, letter_id)

    def link_execution(self, execution_id: Any, label: str | None = None) -> SafeString | str:
        """A link to an execution's page (the admin defines how)."""
        raise NotImplementedError

    def _context(self, request: HttpRequest, title: str, **extra: Any) -> dict[str, Any]:
        return {**self.admin_site.each_context(request), "opts": self.opts, "title": title, **extra}

    def _require_view(self, request: HttpRequest) -> None:
        if not self.has_view_permission(request):
            raise PermissionDenied

    def _require(self, request: HttpRequest, permission: str) -> None:
        if not getattr(self, f"has_{permission}_permission")(request):
            raise PermissionDenied

    def _group(self, signature: str) -> dict[str, Any]:
        summary = selectors.group_summary(signature) if is_signature(signature) else None
        if summary is None:
            raise Http404(f"No open dead letters with signature {signature[:40]!r}.")
        return dict(summary)

    def batch_url(self, execution_id: Any) -> str:
        return self._url("batch", execution_id)

    def submit_batch(
        self,
        request: HttpRequest,
        letters: list[DeadLetter],
        *,
        force: bool,
        signature: str = "",
    ) -> HttpResponse | None:
        """Dispatch a paced replay batch; on to its progress page (None if refused)."""
        try:
            execution = services.submit_replay_batch(
                letters,
                by=request.user,
                trigger_source=TriggerSource.ADMIN,
                force=force,
                signature=signature,
            )
        except DeadLetterError as exc:
            self.message_user(request, str(exc), messages.WARNING)
            return None
        count = len(execution.params["ids"])
        self.message_user(
            request,
            format_html(
                '{} dead letter{} queued for replay at most {} a minute: <a href="{}">batch {}</a>',
                count,
                "" if count == 1 else "s",
                services.replay_rate(),
                self.batch_url(execution.pk),
                str(execution.pk)[:8],
            ),
            messages.SUCCESS,
        )
        return HttpResponseRedirect(self.batch_url(execution.pk))

    # -- groups --------------------------------------------------------------------------

    def groups_view(self, request: HttpRequest) -> HttpResponse:
        """Open letters grouped by signature, biggest first, with their actions."""
        self._require_view(request)
        pipeline = request.GET.get("pipeline") or None
        kind = request.GET.get("failure_kind") or None
        if kind not in (None, *FailureKind.values):
            kind = None
        groups = selectors.dead_letter_groups(pipeline=pipeline, failure_kind=kind)
        page = Paginator(groups, GROUPS_PER_PAGE).get_page(request.GET.get("p"))
        examples = selectors.group_examples(row["example_id"] for row in page)
        changelist = self._url("changelist")
        rows = [
            {
                **row,
                "example": examples.get(row["example_id"]),
                "letters_url": f"{changelist}?state=open&signature={row['signature']}",
            }
            for row in page
        ]
        return TemplateResponse(
            request,
            "admin/dlq/deadletter/groups.html",
            self._context(
                request,
                "Dead letters by error signature",
                rows=rows,
                page=page,
                pipeline=pipeline or "",
                failure_kind=kind or "",
                kinds=FailureKind.choices,
                changelist_url=changelist,
                can_replay=self.has_replay_permission(request),
                can_discard=self.has_resolve_permission(request),
                batches=[selectors.replay_batch_progress(x) for x in selectors.replay_batches(10)],
                replay_rate=services.replay_rate(),
            ),
        )

    def group_replay_view(self, request: HttpRequest, signature: str) -> HttpResponse:
        """Confirm, then replay a whole group at the rate cap."""
        self._require(request, "replay")
        group = self._group(signature)
        form = PacedReplayForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and request.POST.get("post") == "yes" and form.is_valid():
            letters = list(selectors.open_dead_letters().filter(signature=signature))
            done = self.submit_batch(
                request, letters, force=form.cleaned_data["force"], signature=signature
            )
            if done is not None:
                return done
        return self._group_confirmation(request, group, "replay", form)

    def group_discard_view(self, request: HttpRequest, signature: str) -> HttpResponse:
        """Confirm, then discard every open letter of a group with a reason."""
        self._require(request, "resolve")
        group = self._group(signature)
        form = DiscardReasonForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and request.POST.get("post") == "yes" and form.is_valid():
            letters = list(selectors.open_dead_letters().filter(signature=signature))
            result = services.discard_letters(
                letters, by=request.user, reason=form.cleaned_data["note"]
            )
            self.message_user(
                request,
                f"{len(result['discarded'])} dead letters discarded, "
                f"{len(result['skipped'])} skipped (already closed).",
                messages.SUCCESS,
            )
            return HttpResponseRedirect(self._url("groups"))
        return self._group_confirmation(request, group, "discard", form)

    def _group_confirmation(
        self, request: HttpRequest, group: dict[str, Any], action: str, form: forms.Form
    ) -> TemplateResponse:
        preview = list(
            selectors.open_dead_letters().filter(signature=group["signature"])[:GROUP_PREVIEW]
        )
        example = selectors.group_examples([group["example_id"]]).get(group["example_id"])
        label = "Replay group" if action == "replay" else "Discard group"
        return TemplateResponse(
            request,
            "admin/dlq/deadletter/group_confirmation.html",
            self._context(
                request,
                f"{label} {group['signature']}",
                group=group,
                example=example,
                preview=preview,
                action=action,
                action_label=label,
                form=form,
                replay_rate=services.replay_rate(),
                duration=human_duration(
                    services.paced_seconds(group["count"], services.replay_rate())
                ),
            ),
        )

    # -- paced replay from the list -------------------------------------------------------------

    @admin.action(
        description="Replay selected dead letters at the rate cap (SPINE_REPLAY_RATE a minute)",
        permissions=["replay"],
    )
    def replay_paced_selected(
        self, request: HttpRequest, queryset: QuerySet[DeadLetter]
    ) -> HttpResponse | None:
        objects = list(queryset.order_by("created_at", "id"))
        if request.POST.get("post") == "yes":
            form = PacedReplayForm(request.POST)
            if form.is_valid():
                return self.submit_batch(request, objects, force=form.cleaned_data["force"])
        else:
            form = PacedReplayForm()
        return self._confirmation(request, "replay_paced", objects, form, bulk=True)  # type: ignore[attr-defined]

    # -- a batch's progress ----------------------------------------------------------------------

    def batch_view(self, request: HttpRequest, execution_id: uuid.UUID) -> HttpResponse:
        """How far a replay batch got and what each replay became; refreshes while it runs."""
        self._require_view(request)
        execution = Execution.objects.filter(
            pk=execution_id, pipeline=selectors.REPLAY_BATCH_PIPELINE
        ).first()
        if execution is None:
            raise Http404("No replay batch with this id.")
        progress = selectors.replay_batch_progress(execution)
        letters = [
            {
                **entry,
                "letter_link": self.link_letter(entry.get("dead_letter_id")),
                "execution_link": self.link_execution(entry["execution_id"])
                if entry.get("execution_id")
                else "",
            }
            for entry in progress["letters"]  # type: ignore[attr-defined]
        ]
        total = int(progress["total"])  # type: ignore[call-overload]
        done = int(progress["done"])  # type: ignore[call-overload]
        return TemplateResponse(
            request,
            "admin/dlq/deadletter/batch.html",
            self._context(
                request,
                f"Replay batch {str(execution.pk)[:8]}",
                execution=execution,
                execution_link=self.link_execution(execution.pk),
                progress=progress,
                percent=round(100 * done / total) if total else 100,
                pending=max(total - done, 0),
                letters=letters,
                replay_rate=services.replay_rate(),
            ),
        )

    # -- edit and replay ---------------------------------------------------------------------

    def edit_replay_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The pipeline's params form, prefilled; then the diff; then the replay."""
        self._require(request, "replay")
        letter = self.get_object(request, object_id)
        if letter is None:
            raise Http404("No such dead letter.")
        change_url = self._url("change", letter.pk)
        if not letter.is_open:
            self.message_user(
                request,
                f"dead letter {letter.pk} is already {letter.state_label}.",
                messages.WARNING,
            )
            return HttpResponseRedirect(change_url)
        try:
            pipeline = registry.get(letter.pipeline)
        except UnknownPipeline as exc:
            self.message_user(request, f"cannot edit and replay: {exc}.", messages.WARNING)
            return HttpResponseRedirect(change_url)
        form_class = params_form_class(pipeline)
        confirm = ConfirmEditForm(request.POST if request.POST.get("post") == "yes" else None)
        if request.method == "POST" and request.POST.get("post") == "yes":
            if confirm.is_valid():
                try:
                    execution = services.edit_and_replay(
                        letter,
                        confirm.cleaned_data["params_json"],
                        by=request.user,
                        force=confirm.cleaned_data["force"],
                    )
                except DeadLetterError as exc:
                    self.message_user(request, str(exc), messages.WARNING)
                    return HttpResponseRedirect(change_url)
                self.message_user(
                    request,
                    format_html(
                        "{} replayed with edited params → {}",
                        self.link_letter(letter.pk),
                        self.link_execution(execution.pk),
                    ),
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(change_url)
            form = form_class(initial=letter.params or {}, prefix="params")
            return self._edit_page(request, letter, form, confirm_errors=confirm.errors)

        if request.method == "POST":
            form = form_class(request.POST, prefix="params")
            if form.is_valid():
                try:
                    new = services.validate_params(letter, form.params())
                except ParamsRejected as exc:
                    if isinstance(exc.__cause__, InvalidParams):
                        form.apply_errors(exc.__cause__)
                    else:
                        form.add_error(None, str(exc))
                except DeadLetterError as exc:
                    form.add_error(None, str(exc))
                else:
                    return self._edit_confirmation(request, letter, new)
        else:
            form = form_class(initial=letter.params or {}, prefix="params")
        return self._edit_page(request, letter, form)

    def _edit_page(
        self, request: HttpRequest, letter: DeadLetter, form: forms.Form, **extra: Any
    ) -> TemplateResponse:
        return TemplateResponse(
            request,
            "admin/dlq/deadletter/edit_replay.html",
            self._context(
                request,
                f"Edit and replay dead letter {letter.pk}",
                letter=letter,
                form=form,
                step="edit",
                params_json=json.dumps(letter.params, indent=2, sort_keys=True, default=str),
                **extra,
            ),
        )

    def _edit_confirmation(
        self, request: HttpRequest, letter: DeadLetter, new: dict[str, Any]
    ) -> TemplateResponse:
        diff = services.params_diff(letter.params or {}, new)
        return TemplateResponse(
            request,
            "admin/dlq/deadletter/edit_replay.html",
            self._context(
                request,
                f"Confirm the edited replay of dead letter {letter.pk}",
                letter=letter,
                step="confirm",
                diff=[
                    {"key": key, "old": _json(change["old"]), "new": _json(change["new"])}
                    for key, change in diff.items()
                ],
                confirm=ConfirmEditForm(initial={"params_json": _json(new)}),
                over_budget=letter.over_max_retries,
            ),
        )
