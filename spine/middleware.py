"""Project middleware: the request id on every request, and static files by whitenoise.

The request id comes from ``X-Request-ID`` or ``X-Correlation-ID`` when the caller sends
a safe one, otherwise a new UUID; it is echoed back as ``X-Request-ID`` on every response.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from whitenoise.middleware import WhiteNoiseMiddleware

from spine.context import request_id_var

REQUEST_ID_HEADERS = ("HTTP_X_REQUEST_ID", "HTTP_X_CORRELATION_ID")
RESPONSE_HEADER = "X-Request-ID"
MAX_REQUEST_ID_LENGTH = 128
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]*$")


def clean_request_id(value: str | None) -> str | None:
    """Return ``value`` if it is a safe correlation id, else ``None``."""
    if not value:
        return None
    value = value.strip()
    if not value or len(value) > MAX_REQUEST_ID_LENGTH or not _SAFE_ID.match(value):
        return None
    return value


def request_id_from(request: HttpRequest) -> str:
    """The caller's correlation id when acceptable, otherwise a fresh UUID."""
    for header in REQUEST_ID_HEADERS:
        cleaned = clean_request_id(request.META.get(header))
        if cleaned:
            return cleaned
    return str(uuid.uuid4())


class RequestContextMiddleware:
    """Bind the request id for the request's lifetime and echo it on the response."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request_id_from(request)
        request.request_id = request_id  # type: ignore[attr-defined]
        token = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response[RESPONSE_HEADER] = request_id
        return response


class StaticFilesMiddleware(WhiteNoiseMiddleware):
    """whitenoise, with ``STATIC_ROOT`` created first: it warns about a missing directory
    when the process starts before ``collectstatic`` has run (tests, a fresh clone)."""

    def __init__(
        self, get_response: Callable[[HttpRequest], HttpResponse] | None = None, **kwargs: Any
    ) -> None:
        if settings.STATIC_ROOT:
            Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)
        super().__init__(get_response, **kwargs)
