"""Filter backends shared by every list endpoint.

DRF's ``OrderingFilter`` silently ignores a sort field it does not know, so a typo
returns data in an order the client did not ask for. :class:`StrictOrderingFilter`
answers 400 naming the allowed fields instead. :class:`UTCDateTimeFilter` reads
timestamps the way the rest of Market Spine does (aware UTC, naive means UTC).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import django_filters
from django import forms
from rest_framework.exceptions import ValidationError
from rest_framework.filters import OrderingFilter
from rest_framework.request import Request

from spine.time import parse_iso


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


class UTCDateTimeField(forms.DateTimeField):
    """An ISO 8601 timestamp, normalised to aware UTC with :func:`spine.time.parse_iso`.

    A value without an offset is UTC; an offset is applied and dropped, so the database
    only ever sees UTC (PostgreSQL refuses some offsets Python accepts). A value whose
    UTC form falls outside the representable range is a validation error, not a crash.
    """

    default_error_messages = {
        "invalid": "Enter an ISO 8601 date or datetime, e.g. 2025-12-15T00:00:00Z.",
    }

    def to_python(self, value: Any) -> datetime | None:
        if value in self.empty_values:
            return None
        if isinstance(value, datetime):
            text = value.isoformat()
        else:
            text = str(value)
        try:
            return parse_iso(text)
        except (ValueError, OverflowError):
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from None


class UTCDateTimeFilter(django_filters.DateTimeFilter):
    """A datetime filter over :class:`UTCDateTimeField` (use instead of IsoDateTimeFilter)."""

    field_class = UTCDateTimeField
