"""Base classes for every API endpoint: subclass these, never DRF's directly (docs/api.md)."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from spine.api import ratelimit
from spine.api.errors import RateLimitExceeded

_USAGE_ATTR = "_spine_ratelimit_usage"


class SpineAPIMixin:
    """Rate limiting for a DRF view; put it first in the bases."""

    #: Force one budget for every action of the view (``"read"`` or ``"write"``);
    #: by default the HTTP method decides.
    rate_limit_budget: str | None = None
    #: Declared permissions per action (see :mod:`spine.api.permissions`).
    action_permissions: dict[str, tuple[str, ...]] = {}

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        try:
            self.perform_authentication(request)  # type: ignore[attr-defined]
        except exceptions.APIException:
            # Bad credentials still spend the (address-keyed) budget, then fail as 401.
            self.enforce_rate_limit(request)
            raise
        self.enforce_rate_limit(request)
        super().initial(request, *args, **kwargs)  # type: ignore[misc]

    def enforce_rate_limit(self, request: Request) -> None:
        """Spend one unit of the request's budget; raise 429 when it is spent."""
        usage = ratelimit.spend(request, self.rate_limit_budget)
        setattr(request, _USAGE_ATTR, usage)
        if usage is not None and usage.limited:
            raise RateLimitExceeded(
                f"Rate limit exceeded for the {usage.budget} budget "
                f"({usage.limit} requests per window); retry in {usage.reset_seconds} s.",
                wait=usage.reset_seconds,
                details={
                    "budget": usage.budget,
                    "limit": usage.limit,
                    "retry_after_seconds": usage.reset_seconds,
                },
            )

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]
        usage: ratelimit.Usage | None = getattr(request, _USAGE_ATTR, None)
        if usage is not None:
            for name, value in usage.headers().items():
                response[name] = value
        return response


class SpineAPIView(SpineAPIMixin, APIView):
    """A single-purpose endpoint (no model, e.g. a report)."""


class SpineGenericViewSet(SpineAPIMixin, viewsets.GenericViewSet):
    """Compose with DRF's ``mixins`` (List/Retrieve/Create...) and ``@action``."""


class SpineReadOnlyViewSet(SpineAPIMixin, viewsets.ReadOnlyModelViewSet):
    """List + retrieve over a queryset, filtered, ordered and paginated."""
