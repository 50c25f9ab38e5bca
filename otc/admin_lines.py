"""The admin's "Raw lines" page: a capture's lines from the raw archive, paged, read-only."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse

from otc import selectors
from otc.archive import ArchiveCorrupted, ArchiveError, ArchiveMissing
from otc.selectors.lines import MAX_LINES, capture_lines
from spine.config import MAX_INT

PERMISSION = "otc.view_capture"
PAGE_LINES = 100


def _whole(request: HttpRequest, name: str, default: int, maximum: int) -> int:
    raw = request.GET.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise ValueError(f"{name} must be a whole number from 1 to {maximum:,}, not {raw[:40]!r}")
    return int(raw)


def capture_lines_view(request: HttpRequest, capture_id: int) -> HttpResponse:
    """Lines ``?start=`` (1) … of a capture, ``?count=`` (100) at a time, verified."""
    if not request.user.has_perm(PERMISSION):
        raise PermissionDenied
    capture = selectors.captures().filter(pk=capture_id).first()
    if capture is None:
        raise Http404(f"No capture {capture_id}.")
    context: dict[str, Any] = {
        **admin.site.each_context(request),
        "title": f"Raw lines of capture #{capture.pk}",
        "capture": capture,
        "capture_url": reverse("admin:otc_capture_change", args=[capture.pk]),
        "here": reverse("admin-otc-capture-lines", args=[capture.pk]),
        "lines": [],
        "line_count": None,
    }
    status = 200
    try:
        start = _whole(request, "start", 1, MAX_INT)
        count = _whole(request, "count", PAGE_LINES, MAX_LINES)
    except ValueError as exc:
        context.update(error=str(exc), start=1, count=PAGE_LINES)
        return TemplateResponse(request, "admin/otc/capture/lines.html", context, status=400)
    context.update(start=start, count=count)
    try:
        page = capture_lines(capture, start, count)
    except ArchiveError as exc:
        if isinstance(exc, ArchiveMissing):
            status = 409
        elif isinstance(exc, ArchiveCorrupted):
            status = 500
        else:
            status = 503
        context["error"] = str(exc)
    else:
        last = page.lines[-1][0] if page.lines else None
        context.update(
            lines=page.lines,
            line_count=page.line_count,
            last=last,
            previous=max(1, start - count) if start > 1 else None,
            next=start + count if start + count <= page.line_count else None,
            final_page=max(1, page.line_count - count + 1),
        )
    return TemplateResponse(request, "admin/otc/capture/lines.html", context, status=status)
