"""Django forms for operators: a pipeline's params as an HTML form, and action forms."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django import forms
from django.conf import settings
from rest_framework import serializers

from executions.registry import InvalidParams, Pipeline


class ParamsForm(forms.Form):
    """Base class of generated params forms; see :func:`params_form_class`."""

    #: Field names the serializer requires (always sent, even when empty).
    required_params: frozenset[str] = frozenset()
    #: Boolean params: always sent, a browser omits unchecked boxes.
    boolean_params: frozenset[str] = frozenset()

    def params(self) -> dict[str, Any]:
        """The cleaned values as JSON-safe params; empty optional ones are left out so
        the serializer's defaults apply."""
        out: dict[str, Any] = {}
        for name, value in self.cleaned_data.items():
            if name in self.boolean_params:
                out[name] = bool(value)
            elif value in (None, "", [], {}) and name not in self.required_params:
                continue
            else:
                out[name] = _json_safe(value)
        return out

    def apply_errors(self, exc: InvalidParams) -> None:
        """Show the serializer's verdict on the form: per field where it names one."""
        for key, messages in exc.errors.items():
            texts = [str(m) for m in (messages if isinstance(messages, list) else [messages])]
            if key in self.fields:
                for text in texts:
                    self.add_error(key, text)
            else:
                label = "" if key == "non_field_errors" else f"{key}: "
                for text in texts:
                    self.add_error(None, f"{label}{text}")


def _json_safe(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _form_field(field: serializers.Field) -> tuple[forms.Field, bool]:
    """A form field for one serializer field, and whether it is a boolean."""
    required = bool(field.required)
    common: dict[str, Any] = {
        "required": required,
        "help_text": str(field.help_text or ""),
        "label": str(field.label) if field.label else None,
    }
    if field.default is not serializers.empty:
        default = field.default() if callable(field.default) else field.default
        common["initial"] = default
    if isinstance(field, serializers.BooleanField) and required:
        # A boolean with no default is a choice to make: nothing preselected, and an
        # unanswered one goes to the serializer (as null) for its own message.
        return forms.TypedChoiceField(
            **{**common, "required": False},
            choices=[("", "—"), ("true", "Yes (true)"), ("false", "No (false)")],
            coerce=lambda value: value == "true",
            empty_value=None,
        ), False
    if isinstance(field, serializers.BooleanField):
        return forms.BooleanField(**{**common, "required": False}), True
    if isinstance(field, serializers.MultipleChoiceField):
        return forms.MultipleChoiceField(choices=list(field.choices.items()), **common), False
    if isinstance(field, serializers.ChoiceField):
        choices = list(field.choices.items())
        if not required:
            choices = [("", "—"), *choices]
        return forms.ChoiceField(choices=choices, **common), False
    if isinstance(field, serializers.IntegerField):
        return forms.IntegerField(**common), False
    if isinstance(field, serializers.FloatField | serializers.DecimalField):
        return forms.DecimalField(**common), False
    if isinstance(field, serializers.DateTimeField):
        widget = forms.DateTimeInput(attrs={"placeholder": "YYYY-MM-DDTHH:MM:SSZ"})
        return forms.CharField(widget=widget, **common), False
    if isinstance(field, serializers.DateField):
        return forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), **common), False
    if isinstance(field, serializers.ListField | serializers.DictField | serializers.JSONField):
        widget = forms.Textarea(attrs={"rows": 3, "cols": 60, "placeholder": "JSON"})
        return forms.JSONField(widget=widget, **common), False
    return forms.CharField(strip=True, **common), False


def params_form_class(pipeline: Pipeline) -> type[ParamsForm]:
    """A form class with one field per writable param of ``pipeline``."""
    fields: dict[str, forms.Field] = {}
    booleans: set[str] = set()
    required: set[str] = set()
    for name, field in pipeline.params().fields.items():
        if field.read_only:
            continue
        fields[name], is_bool = _form_field(field)
        if is_bool:
            booleans.add(name)
        if field.required:
            required.add(name)
    attrs: dict[str, Any] = {
        **fields,
        "required_params": frozenset(required),
        "boolean_params": frozenset(booleans),
    }
    return type(f"{pipeline.name.replace('.', '_')}_params_form", (ParamsForm,), attrs)


class LaneForm(forms.Form):
    """The lane override offered next to the params (blank: the pipeline's own lane)."""

    lane = forms.ChoiceField(
        required=False,
        choices=[("", "the pipeline's lane"), *((lane, lane) for lane in settings.EXECUTION_LANES)],
        help_text="Run on another lane (Celery queue) than the pipeline's default.",
    )


class CancelForm(forms.Form):
    reason = forms.CharField(
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 80}),
        help_text="Optional: why, recorded in each execution's history.",
    )


class RerunForm(forms.Form):
    """Nothing to fill in: a re-run uses the stored params; the form carries the CSRF post."""
