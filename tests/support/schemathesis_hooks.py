"""Schemathesis hooks for the rules a request schema does not state (relations between
fields, a format string's placeholders, FINRA's range of reporting weeks, paths that
must stay inside the inbox): generated requests that break one are dropped,
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

#: Params whose rules the schema cannot state: the reporting-week range (2014 through
#: the current week; a sync's `since`), inbox-relative paths, and backfill's range and file
#: pattern.
_UNSTATED = {
    "week",
    "start",
    "end",
    "since",
    "path",
    "directory",
    "pattern",
    "non_field_errors",
}


def _setup() -> None:
    if not apps.ready:  # the CLI loads this module outside Django
        django.setup()


def _refused_params(pipeline: str, params: dict[str, Any]) -> bool:
    """Whether the pipeline's own validation refuses these (schema-valid) params on a
    rule the schema does not state."""
    _setup()
    if pipeline not in registry:
        return False
    try:
        registry.get(pipeline).validate(params)
    except InvalidParams as exc:
        return set(exc.errors) <= _UNSTATED
    return False


def _refused_week(value: Any) -> bool:
    """Whether an upload's ``week`` is a date outside FINRA's reporting weeks."""
    if not isinstance(value, str):
        return False
    _setup()
    from otc.weeks import reporting_week

    try:
        reporting_week(value)
    except (TypeError, ValueError):
        return True
    return False


def _kept(body: Any) -> bool:
    """Keep a submission only if its pipeline's params pass the rules above, and an
    upload only if its week is a reporting week; every other body is kept as
    generated."""
    if not isinstance(body, dict):
        return True
    if "file" in body:
        return "week" not in body or not _refused_week(body["week"])
    if "pipeline" not in body:
        return True
    params = body.get("params")
    if not isinstance(params, dict) or not isinstance(body["pipeline"], str):
        return True
    return not _refused_params(body["pipeline"], params)


#: The OTC range reads: ``start`` not after ``end``, at most five years apart.
_RANGE_READS = ("/venue-shares/", "/market-share/")


def _refused_range(case: Any) -> bool:
    """Whether a range read's dates, each a valid date, break the range rule (only
    ``end`` is refused: after ``start``, or too far from it)."""
    operation = getattr(case, "operation", None)
    path = getattr(operation, "path", None) or getattr(case, "path", "") or ""
    query = case.query
    if not path.endswith(_RANGE_READS) or not isinstance(query, dict):
        return False
    _setup()
    from otc.serializers import SeriesRangeQuery

    dates = {name: query[name] for name in ("start", "end") if isinstance(query.get(name), str)}
    if len(dates) < 2:
        return False
    form = SeriesRangeQuery(data=dates)
    return not form.is_valid() and set(form.errors) == {"end"} and "start" not in form.errors


@schemathesis.hook
def filter_case(ctx: Any, case: Any) -> bool:
    """Generated and coverage cases (both phases apply this hook)."""
    return _kept(case.body) and not _refused_range(case)


@schemathesis.hook
def before_add_examples(ctx: Any, examples: list[Any]) -> None:
    """The schema's explicit examples, which no filter hook sees."""
    examples[:] = [case for case in examples if _kept(case.body)]


from tests.dlq import dlq_schemathesis_hooks  # noqa: E402, F401 (the dead-letter bodies)
