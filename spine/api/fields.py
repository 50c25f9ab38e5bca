"""Request-body fields that take JSON as it is typed: a string field refuses a number,
a boolean field anything but true or false, as the schema says (DRF's own coerce)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from rest_framework import serializers

#: Text the database can store: no NUL characters (the schema says so too).
NO_NUL = "^[^\\u0000]*$"
#: What ``str.strip()`` removes (DRF trims text fields), as a regex character class body.
_SPACE = (
    "\\t\\n\\v\\f\\r\\u001c-\\u001f \\u0085\\u00a0\\u1680"
    "\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
)
#: Text that is not blank once trimmed, and without NUL characters.
NOT_BLANK = f"^[^\\u0000]*[^\\u0000{_SPACE}][^\\u0000]*$"


def text_pattern(field: serializers.CharField) -> str:
    """The schema pattern of a DRF text field: no NUL, and not blank unless allowed."""
    if field.allow_blank or not field.trim_whitespace:
        return NO_NUL
    return NOT_BLANK


class JSONCharField(serializers.CharField):
    """A string, and only a string (no NUL characters)."""

    default_error_messages = {"invalid": "Must be a string."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class JSONBooleanField(serializers.BooleanField):
    """``true`` or ``false``, and only those."""

    default_error_messages = {"invalid": "Must be true or false."}

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class JSONCharFieldSchema(OpenApiSerializerFieldExtension):
    """Documents :class:`JSONCharField` as DRF's string plus what it refuses (NUL,
    blank)."""

    target_class = JSONCharField
    match_subclasses = True

    def map_serializer_field(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        schema: dict[str, Any] = auto_schema._map_serializer_field(
            self.target, direction, bypass_extensions=True
        )
        schema.setdefault("pattern", text_pattern(self.target))
        return schema
