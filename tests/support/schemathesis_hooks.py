"""Schemathesis hooks for the rules a request schema does not state (relations between
fields, a format string's placeholders): generated requests that break one are dropped,
since the server rightly refuses them with a 400 that the fixed-path tests check.
Loaded by the suite's runs (``tests.support.api_fuzz``) and by the CLI
(``SCHEMATHESIS_HOOKS=tests.support.schemathesis_hooks``).
"""

from __future__ import annotations

from typing import Any

import django
import schemathesis
from django.apps import apps

from executions.registry import InvalidParams, registry


def _refused_params(pipeline: str, params: dict[str, Any]) -> bool:
    """Whether the pipeline's own validation refuses these (schema-valid) params."""
    if not apps.ready:  # the CLI loads this module outside Django
        django.setup()
    if pipeline not in registry:
        return False
    try:
        registry.get(pipeline).validate(params)
    except InvalidParams:
        return True
    return False


@schemathesis.hook
def filter_body(ctx: Any, body: Any) -> bool:
    """Keep a backfill submission only if its range and file pattern are valid (start
    not after end, at most the span allowed, a pattern naming {week} and only that or
    {tier}); every other body is kept as generated."""
    if not isinstance(body, dict) or body.get("pipeline") != "otc.backfill":
        return True
    params = body.get("params")
    if not isinstance(params, dict):
        return True
    return not _refused_params("otc.backfill", params)
