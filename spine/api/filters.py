"""Filter backends shared by every list endpoint.

DRF's ``OrderingFilter`` silently ignores a sort field it does not know, so a typo
returns data in an order the client did not ask for. :class:`StrictOrderingFilter`
answers 400 naming the allowed fields instead.
"""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import ValidationError
from rest_framework.filters import OrderingFilter
from rest_framework.request import Request


class StrictOrderingFilter(OrderingFilter):
    """``?ordering=a,-b`` over the view's ``ordering_fields``; unknown fields are a 400."""

    def get_ordering(self, request: Request, queryset: Any, view: Any) -> Any:
        params = request.query_params.get(self.ordering_param)
        if params:
            fields = [param.strip() for param in params.split(",") if param.strip()]
            allowed = self._allowed_names(queryset, view, request)
            unknown = [field for field in fields if field.lstrip("-") not in allowed]
            if unknown:
                raise ValidationError(
                    {
                        self.ordering_param: [
                            f"unknown sort field(s): {', '.join(unknown)}; "
                            f"allowed: {', '.join(sorted(allowed))} (prefix '-' for descending)"
                        ]
                    }
                )
        return super().get_ordering(request, queryset, view)

    def _allowed_names(self, queryset: Any, view: Any, request: Request) -> set[str]:
        return {
            name for name, _label in self.get_valid_fields(queryset, view, {"request": request})
        }
