"""OpenAPI conventions: every operation documents the standard errors and headers.

:class:`SpineAutoSchema` (``DEFAULT_SCHEMA_CLASS``) adds to each operation of a
:class:`~spine.api.views.SpineAPIMixin` view the responses every such endpoint can
give — 401/403 (authentication, permission), 429 (rate limit) and 400 for writes —
in the standard error shape, plus the ``X-RateLimit-*`` headers on every response.
Views document only what is specific to them with ``extend_schema`` (params, their
success response, 404/409...), using :data:`ERROR` for error bodies.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Machine-readable error code, e.g. validation_error.")
    message = serializers.CharField(help_text="What went wrong, for a person.")
    details = serializers.DictField(
        child=serializers.JSONField(),
        help_text="Field → messages for validation errors; other context otherwise; {} if none.",
    )


class ErrorResponseSerializer(serializers.Serializer):
    """The one error body of the API."""

    error = ErrorDetailSerializer()

    class Meta:
        ref_name = "ErrorResponse"


ERROR = ErrorResponseSerializer


def error_response(description: str) -> OpenApiResponse:
    """An ``extend_schema`` response entry in the standard error shape."""
    return OpenApiResponse(response=ErrorResponseSerializer, description=description)


_DEFAULT_ERRORS = {
    "401": "Missing or invalid credentials.",
    "403": "Authenticated but lacking the required permission.",
    "429": "Rate limit exceeded; see Retry-After.",
}
_RATE_LIMIT_HEADERS = {
    "X-RateLimit-Limit": "Requests allowed in the current window of this budget.",
    "X-RateLimit-Remaining": "Requests left in the current window.",
    "X-RateLimit-Reset": "Seconds until the current window ends.",
}


class SpineAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema plus the platform's common responses and headers."""

    def _get_response_bodies(self, direction: str = "response") -> dict[str, Any]:
        responses: dict[str, Any] = super()._get_response_bodies(direction)
        from spine.api.views import SpineAPIMixin

        if not isinstance(self.view, SpineAPIMixin):
            return responses
        defaults = dict(_DEFAULT_ERRORS)
        if self.method not in ("GET", "HEAD", "OPTIONS"):
            defaults["400"] = "Invalid input; details name each field."
        for code, description in defaults.items():
            if code not in responses:
                responses[code] = self._get_response_for_code(
                    error_response(description), code, direction=direction
                )
        for code, response in responses.items():
            headers = response.setdefault("headers", {})
            for name, description in _RATE_LIMIT_HEADERS.items():
                headers.setdefault(
                    name, {"schema": {"type": "integer"}, "description": description}
                )
            if code == "429":
                headers.setdefault(
                    "Retry-After",
                    {"schema": {"type": "integer"}, "description": "Seconds to wait."},
                )
        return responses


__all__ = ["ERROR", "ErrorResponseSerializer", "OpenApiTypes", "SpineAutoSchema", "error_response"]
