"""OpenAPI conventions: every operation documents the standard errors and headers."""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, PolymorphicProxySerializer
from rest_framework import serializers

from spine.api.csv import document_csv
from spine.api.pagination import page_parameters


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
    "406": "The Accept header asks for a format other than JSON.",
    "429": "Rate limit exceeded; see Retry-After.",
}
_WRITE_ERRORS = {
    "400": "Invalid input; details name each field.",
    "413": "The request body is too large.",
    "415": "The request body is not JSON.",
}
_QUERY_ERROR = "A query parameter is invalid (details name it)."
_PAGE_ERROR = "The page is past the end."
_RATE_LIMIT_HEADERS = {
    "X-RateLimit-Limit": "Requests allowed in the current window of this budget.",
    "X-RateLimit-Remaining": "Requests left in the current window.",
    "X-RateLimit-Reset": "Seconds until the current window ends.",
}


class SpineAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema plus the platform's common responses and headers:
    every status an endpoint can answer is documented, in the standard error shape."""

    def get_operation(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        operation: dict[str, Any] | None = super().get_operation(*args, **kwargs)
        from spine.api.views import SpineAPIMixin

        if operation is None or not isinstance(self.view, SpineAPIMixin):
            return operation
        if isinstance(self.get_request_serializer(), PolymorphicProxySerializer):
            operation.get("requestBody", {})["required"] = True  # one of the shapes, always
        responses = operation.setdefault("responses", {})
        defaults = dict(_DEFAULT_ERRORS)
        if self.method in ("GET", "HEAD", "OPTIONS"):
            if any(p.get("in") == "query" for p in operation.get("parameters", [])):
                defaults["400"] = _QUERY_ERROR
            if self._is_list_view() and self._get_paginator() is not None:
                defaults["404"] = _PAGE_ERROR
        else:
            defaults.update(_WRITE_ERRORS)
        for code, description in defaults.items():
            if code not in responses:
                responses[code] = self._get_response_for_code(
                    error_response(description), code, direction="response"
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
        operation["responses"] = dict(sorted(responses.items()))
        document_csv(self, operation)
        return operation


#: The ``page`` and ``page_size`` parameters, for paginated ``@action`` views.
PAGE_PARAMETERS = [
    OpenApiParameter(
        param["name"], param["schema"], OpenApiParameter.QUERY, description=param["description"]
    )
    for param in page_parameters()
]


__all__ = [
    "ERROR",
    "PAGE_PARAMETERS",
    "ErrorResponseSerializer",
    "OpenApiTypes",
    "SpineAutoSchema",
    "error_response",
]
