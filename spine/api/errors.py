"""One error body for the whole API: ``{"error": {"code", "message", "details"}}``.

DRF's exception handler, Django's error handlers for API paths, helpers for plain views,
and the registry apps fill with :func:`register_exception_mapper` (docs/api.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core import signals
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from django_ratelimit.exceptions import Ratelimited
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.views import set_rollback

from spine.context import get_request_id
from spine.text import printable

logger = logging.getLogger("spine.api")

API_PATH_PREFIXES = ("/api/", "/health/", "/health", "/metrics")


class SpineAPIError(exceptions.APIException):
    """An API error with an explicit code, message and details.

    Raise it (or a subclass) from a view when a domain rule says no; the exception
    handler renders it in the standard shape with its status code.
    """

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "bad_request"
    default_detail = "The request could not be processed."

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        details: dict[str, Any] | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(detail=message or self.default_detail, code=code or self.default_code)
        self.code = code or self.default_code
        self.details = details or {}
        if status_code is not None:
            self.status_code = status_code


class Conflict(SpineAPIError):
    """The request is well-formed but the resource's current state forbids it (409)."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"
    default_detail = "The resource's current state does not allow this request."


class RequestTooLarge(SpineAPIError):
    """The request body is over the server's limit (413)."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request_too_large"
    default_detail = "The request body is too large."


class RateLimitExceeded(SpineAPIError):
    """The caller spent its budget; ``Retry-After`` says when to come back (429)."""

    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = "rate_limited"
    default_detail = "Rate limit exceeded."

    def __init__(self, message: str | None = None, *, wait: int, details: dict[str, Any]) -> None:
        super().__init__(message, details=details)
        self.wait = wait


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    """The standard error body; non-dict details are wrapped so ``details`` is an object."""
    if details is None:
        details = {}
    elif not isinstance(details, dict):
        details = {"non_field_errors": details if isinstance(details, list) else [details]}
    return {"error": {"code": code, "message": message, "details": details}}


def json_error(
    status_code: int,
    code: str,
    message: str,
    details: Any = None,
    headers: dict[str, str] | None = None,
) -> JsonResponse:
    """A plain Django JSON response in the standard error shape (for non-DRF views)."""
    response = JsonResponse(error_body(code, message, details), status=status_code)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def method_not_allowed(allowed: list[str]) -> JsonResponse:
    """405 in the standard shape, with the ``Allow`` header Django would have sent."""
    return json_error(
        405,
        "method_not_allowed",
        f"Method not allowed; use {', '.join(allowed)}.",
        {"allowed_methods": allowed},
        headers={"Allow": ", ".join(allowed)},
    )


# Domain exceptions raised below the API (services, registry) are mapped to API errors
# here, so views stay thin and every app's domain errors get the same treatment. Apps
# register their mappers from ``AppConfig.ready()``; this module knows no app.
ExceptionMapper = Callable[[Exception], exceptions.APIException]
_MAPPERS: dict[type[Exception], ExceptionMapper] = {}


def register_exception_mapper(exc_type: type[Exception], fn: ExceptionMapper) -> ExceptionMapper:
    """Render ``exc_type`` (and its subclasses) through ``fn``, an API exception factory."""
    _MAPPERS[exc_type] = fn
    return fn


def maps_exception(
    exc_type: type[Exception],
) -> Callable[[ExceptionMapper], ExceptionMapper]:
    """:func:`register_exception_mapper` as a decorator, e.g.::

    @maps_exception(NotReplayable)
    def _not_replayable(exc):
        return Conflict(str(exc), code="not_replayable")
    """

    def register(fn: ExceptionMapper) -> ExceptionMapper:
        return register_exception_mapper(exc_type, fn)

    return register


#: The longest message an error body's details carry; input they echo is cut and escaped.
_DETAIL_CHARS = 1000


def plain(value: Any) -> Any:
    """DRF ErrorDetail strings and nested containers → plain JSON values, each string
    at most ``_DETAIL_CHARS`` long with control characters escaped."""
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return printable(str(value), _DETAIL_CHARS) if isinstance(value, str) else value


def _map_domain(exc: Exception) -> Exception:
    for klass in type(exc).__mro__:
        mapper = _MAPPERS.get(klass)
        if mapper is not None:
            return mapper(exc)
    return exc


def _code_of(exc: exceptions.APIException) -> str:
    code = getattr(exc, "code", None)
    if isinstance(code, str):
        return code
    codes = exc.get_codes()
    return codes if isinstance(codes, str) else exc.default_code


def api_exception_body(exc: exceptions.APIException) -> dict[str, Any]:
    """Render any DRF API exception in the standard shape."""
    if isinstance(exc, SpineAPIError):
        return error_body(exc.code, str(exc.detail), plain(exc.details))
    if isinstance(exc, exceptions.ValidationError):
        return error_body("validation_error", "Invalid input.", plain(exc.detail))
    detail = exc.detail
    if isinstance(detail, list | dict):
        return error_body(exc.default_code, str(exc.default_detail), plain(detail))
    return error_body(_code_of(exc), str(detail), {})


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF's exception handler: every exception becomes the standard error body.

    Unlike DRF's default it also answers unexpected exceptions (500) in the standard
    shape instead of letting Django render an HTML page; the exception is logged and
    ``got_request_exception`` is still sent, so error reporters and the test client
    see it as usual.
    """
    exc = _map_domain(exc)
    if isinstance(exc, Ratelimited):
        exc = RateLimitExceeded(wait=60, details={})
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound(*exc.args)
    elif isinstance(exc, RequestDataTooBig):
        exc = RequestTooLarge(
            f"The request body is over {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes.",
            details={"max_bytes": settings.DATA_UPLOAD_MAX_MEMORY_SIZE},
        )
    elif isinstance(exc, SuspiciousOperation):  # e.g. too many query parameters
        exc = SpineAPIError(str(exc)[:200] or "Bad request.", code="bad_request")
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(*exc.args)
    elif isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(as_serializer_error(exc))

    if isinstance(exc, exceptions.APIException):
        headers: dict[str, str] = {}
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header  # type: ignore[attr-defined]
        wait = getattr(exc, "wait", None)
        if wait:
            headers["Retry-After"] = str(int(wait))
        set_rollback()
        return Response(api_exception_body(exc), status=exc.status_code, headers=headers)

    request = context.get("request")
    django_request = getattr(request, "_request", request)
    logger.error("unhandled exception in API view", exc_info=exc)
    signals.got_request_exception.send(sender=None, request=django_request)
    set_rollback()
    details: dict[str, Any] = {"request_id": get_request_id()}
    if settings.DEBUG:
        details["exception"] = repr(exc)
    return Response(
        error_body("server_error", "Internal server error.", details),
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )


def is_api_path(path: str) -> bool:
    """Whether Django's own error pages should be JSON for this path."""
    return path.startswith(API_PATH_PREFIXES)


def handler404(request: HttpRequest, exception: Exception) -> HttpResponse:
    """JSON 404 for API paths; Django's page elsewhere (admin, ops pages)."""
    if is_api_path(request.path):
        return api_not_found(request)
    return defaults.page_not_found(request, exception)


def handler500(request: HttpRequest) -> HttpResponse:
    """JSON 500 for API paths; Django's page elsewhere."""
    if is_api_path(request.path):
        return json_error(
            500, "server_error", "Internal server error.", {"request_id": get_request_id()}
        )
    return defaults.server_error(request)


def handler403(request: HttpRequest, exception: Exception) -> HttpResponse:
    """JSON 403 for API paths; Django's page elsewhere."""
    if is_api_path(request.path):
        return json_error(403, "permission_denied", "You do not have permission to do this.")
    return defaults.permission_denied(request, exception)


def handler400(request: HttpRequest, exception: Exception) -> HttpResponse:
    """JSON 400 for API paths (e.g. a disallowed Host header); Django's page elsewhere."""
    if is_api_path(request.path):
        return json_error(400, "bad_request", "Bad request.")
    return defaults.bad_request(request, exception)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """``CSRF_FAILURE_VIEW``: JSON 403 for API paths, Django's page elsewhere (admin)."""
    if is_api_path(request.path):
        return json_error(403, "csrf_failed", f"CSRF check failed: {reason}", {"reason": reason})
    from django.views.csrf import csrf_failure as django_csrf_failure

    return django_csrf_failure(request, reason=reason)


@csrf_exempt  # answers every method the same way; a CSRF 403 would hide the real 404
def api_not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """The 404 for any unmatched ``/api/`` path, in every DEBUG mode.

    A missing trailing slash is the usual cause, so the message names the right path
    instead of redirecting (a redirect would turn a POST into a GET).
    """
    from django.urls import Resolver404, resolve

    details: dict[str, Any] = {"path": request.path}
    message = f"No API endpoint at {request.path}."
    if not request.path.endswith("/"):
        try:
            match = resolve(request.path + "/")
        except Resolver404:
            match = None
        if match is not None and match.func is not api_not_found:
            message += f" Did you mean {request.path}/ ?"
            details["did_you_mean"] = request.path + "/"
    return json_error(404, "not_found", message, details)
