"""The admin's "Ingest a FINRA file" page: upload a file and run it, as the API does."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils.html import format_html

from executions.admin import execution_label, execution_url, status_badge
from executions.models import Execution, TriggerSource
from executions.registry import InvalidParams
from otc.inbox import UploadTooLarge
from otc.params import ATS_REQUIRED
from otc.services.intake import submit_file
from otc.uploads import upload_too_large
from spine.admin import execution_link
from spine.context import get_request_id

PERMISSION = "executions.add_execution"


class IngestFileForm(forms.Form):
    file = forms.FileField(help_text="A FINRA weekly download file (pipe-delimited).")
    tier = forms.ChoiceField(
        choices=[("", "—"), ("T1", "NMS Tier 1"), ("T2", "NMS Tier 2"), ("OTC", "OTC equities")]
    )
    week = forms.DateField(
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Any date in the reporting week (stored as its Monday).",
    )
    ats = forms.TypedChoiceField(
        label="Which summary",
        choices=[
            ("", "—"),
            ("true", "ATS summary (alternative trading systems)"),
            ("false", "non-ATS (OTC) summary (member firms outside an ATS)"),
        ],
        coerce=lambda value: value == "true",
        empty_value=None,
        error_messages={"required": ATS_REQUIRED},
        help_text="FINRA publishes ATS and non-ATS volume as separate files and nothing in "
        "a file's columns says which it is: choose it here.",
    )


def ingest_file_view(request: HttpRequest) -> HttpResponse:
    """Upload a FINRA file; on success, redirect to the execution running it."""
    if not request.user.has_perm(PERMISSION):
        raise PermissionDenied
    posted = request.method == "POST"
    form = IngestFileForm(request.POST if posted else None, request.FILES if posted else None)
    if posted and upload_too_large(request):
        form.is_valid()
        form.add_error("file", _too_large())
    elif posted and form.is_valid():
        execution = _submit(request, form)
        if execution is not None:
            messages.success(
                request,
                format_html(
                    "{} dispatched for {}: {} {}",
                    execution.pipeline,
                    execution.params.get("path"),
                    execution_link(execution.pk, execution_label(execution)),
                    status_badge(execution.status),
                ),
            )
            return HttpResponseRedirect(execution_url(execution.pk))
    context: dict[str, Any] = {
        **admin.site.each_context(request),
        "title": "Ingest a FINRA file",
        "form": form,
        "max_bytes": settings.SPINE_UPLOAD_MAX_BYTES,
    }
    return TemplateResponse(request, "admin/otc/ingest.html", context)


def _submit(request: HttpRequest, form: IngestFileForm) -> Execution | None:
    data = form.cleaned_data
    upload = data["file"]
    try:
        return submit_file(
            upload.chunks(),
            upload.name or "upload.psv",
            tier=data["tier"],
            week=data["week"].isoformat(),
            ats=data["ats"],
            trigger_source=TriggerSource.ADMIN,
            request_id=get_request_id(),
        )
    except UploadTooLarge:
        form.add_error("file", _too_large())
    except InvalidParams as exc:
        for key, texts in exc.errors.items():
            for text in texts if isinstance(texts, list) else [texts]:
                form.add_error(key if key in form.fields else None, str(text))
    return None


def _too_large() -> str:
    return f"The file is larger than the upload limit of {settings.SPINE_UPLOAD_MAX_BYTES:,} bytes."
