"""Template filters of the operations console: timestamps, durations, counts, index groups."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

from spine.text import human_duration
from spine.time import format_iso, format_shown

register = template.Library()

#: The admin index's groups, in order, by what operators do; models not named here
#: (Celery's result tables, beat's schedule internals, anything new) go to "Advanced".
INDEX_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Operations", ("executions.execution", "executions.executionlock")),
    ("Dead letters", ("dlq.deadletter",)),
    (
        "OTC data",
        (
            "otc.capture",
            "otc.qualityreport",
            "otc.reject",
            "otc.venuevolume",
            "otc.symbolweeksummary",
            "otc.venuemarketshare",
            "otc.venue",
            "otc.symbolrolling",
            "otc.venuerolling",
        ),
    ),
    ("Schedules", ("django_celery_beat.periodictask",)),
    ("Users and tokens", ("auth.user", "auth.group", "authtoken.tokenproxy", "authtoken.token")),
)
ADVANCED = "Advanced"


@register.filter
def spine_time(value: datetime | None) -> SafeString | str:
    """``2025-10-06 14:03:27 UTC``, its ISO 8601 form in the tooltip."""
    if not isinstance(value, datetime):
        return "—"
    iso = format_iso(value)
    shown = format_shown(value)
    return format_html('<time datetime="{}" title="{}">{}</time>', iso, iso, shown)


@register.filter
def spine_iso(value: datetime | None) -> str:
    return format_iso(value) if isinstance(value, datetime) else ""


@register.filter
def spine_duration(seconds: float | None) -> str:
    return human_duration(seconds)


@register.filter
def spine_int(value: Any) -> str:
    """A count with thousands separators: ``1,234,567``."""
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return "—" if value in (None, "") else str(value)


def group_app_list(app_list: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The admin's per-app list regrouped into :data:`INDEX_GROUPS` plus "Advanced"."""
    models: dict[str, dict[str, Any]] = {}
    for app in app_list:
        for model in app["models"]:
            models[f"{app['app_label']}.{model['object_name'].lower()}"] = model
    groups = []
    for name, keys in INDEX_GROUPS:
        found = [models.pop(key) for key in keys if key in models]
        if found or name == INDEX_GROUPS[0][0]:  # the overview is always listed first
            groups.append({"name": name, "slug": _slug(name), "models": found})
    if models:
        rest = sorted(models.values(), key=lambda m: str(m["name"]))
        groups.append({"name": ADVANCED, "slug": _slug(ADVANCED), "models": rest})
    return groups


def _slug(name: str) -> str:
    return name.lower().replace(" ", "-")


@register.simple_tag
def spine_index_groups(app_list: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return group_app_list(app_list)
