"""Filter backends shared by every list endpoint: a bad sort field or filter value is a 400."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import django_filters
from django import forms
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema_field
from rest_framework.exceptions import ValidationError
from rest_framework.filters import OrderingFilter
from rest_framework.request import Request

from spine.api.fields import NO_NUL
from spine.time import parse_iso

#: The words a boolean query parameter accepts (any case), as the schema says.
BOOLEAN_WORDS = {"true": True, "false": False}


class StrictOrderingFilter(OrderingFilter):
    """``?ordering=a,-b`` over the view's ``ordering_fields``; unknown fields are a 400."""

    def get_ordering(self, request: Request, queryset: Any, view: Any) -> Any:
        params = request.query_params.get(self.ordering_param)
        if params:
            fields = params.split(",")
            allowed = self._allowed_names(queryset, view, request)
            unknown = [repr(field) for field in fields if _bare(field) not in allowed]
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

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        """A comma-separated list of the allowed fields, each optionally prefixed '-'."""
        names = sorted(name for name, _label in self.get_valid_fields(None, view, {}))
        return [
            {
                "name": self.ordering_param,
                "required": False,
                "in": "query",
                "description": "Sort fields, comma-separated; prefix '-' for descending.",
                "schema": {
                    "type": "array",
                    "items": {
                        "type": "string",
                        "enum": [f"{sign}{name}" for name in names for sign in ("", "-")],
                    },
                },
                "style": "form",
                "explode": False,
            }
        ]


def _bare(term: str) -> str:
    return term[1:] if term.startswith("-") else term


@extend_schema_field({"type": "string", "pattern": NO_NUL})
class TextFilter(filters.CharFilter):
    """Free text (a name, a search): any string without NUL characters."""


class StrictFilterForm(forms.Form):
    """The filter form of :class:`StrictFilterSet`: refuses what django-filter skips."""

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        for name, field in self.fields.items():
            if name not in self.data:
                continue
            for raw in self.data.getlist(name):
                problem = _refused(field, raw)
                if problem:
                    self.add_error(name, problem)
                    break
        return cleaned


def _refused(field: forms.Field, raw: str) -> str | None:
    """Why a raw value django-filter would quietly drop is refused, or None."""
    if isinstance(field, forms.NullBooleanField):
        if raw.lower() not in BOOLEAN_WORDS:
            return f"{raw[:40]!r} is not a boolean: use true or false."
    elif raw == "" and (type(field) is not forms.CharField):
        return "Give a value, or leave the parameter out."
    return None


class StrictFilterSet(filters.FilterSet):
    """A FilterSet whose every parameter is validated: an empty value of a typed filter
    (date, number, choice, id) or a boolean other than true/false is a 400 naming it,
    never a filter silently not applied."""

    class Meta:
        form = StrictFilterForm


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
