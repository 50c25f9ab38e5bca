"""Pipeline ``otc.backfill``: one ``otc.full_etl`` child execution per week of a range."""

from __future__ import annotations

from datetime import date
from typing import Any

from rest_framework import serializers

from executions.registry import RERUN_SAFE_REQUEUES, PipelineParams, pipeline
from executions.run_context import RunContext
from otc import inbox
from otc.params import InboxPathField, WeekField, file_ats_field, tier_field
from otc.pipelines.steps import dispatch_children
from otc.weeks import iter_weeks, weeks_between

__all__ = [
    "DEFAULT_PATTERN",
    "MAX_BACKFILL_WEEKS",
    "SUMMARY_NAMES",
    "BackfillParams",
    "backfill_files",
    "backfill_pipeline",
    "week_file_name",
]

#: The most weeks one backfill may span (ten years).
MAX_BACKFILL_WEEKS = 520
#: Default file name pattern in a backfill directory, as ``otc generate`` writes them.
DEFAULT_PATTERN = "finra_{tier}_{summary}_{week}.psv"
#: ``{summary}`` in a pattern: which summary the files are, as ``otc generate`` names them.
SUMMARY_NAMES = {True: "ats", False: "non_ats"}


class BackfillParams(PipelineParams):
    tier = tier_field()
    start = WeekField(help_text="First week (any date in it), from 2014-01-06.")
    end = WeekField(help_text="Last week (any date in it), inclusive; not after the current week.")
    ats = file_ats_field()
    directory = InboxPathField(
        help_text="Directory holding one file per week, relative to the inbox ('.' for the inbox)."
    )
    pattern = serializers.CharField(
        max_length=200,
        default=DEFAULT_PATTERN,
        help_text="File name per week; {tier} is the lower-case tier, {summary} is ats or "
        "non_ats, {week} is YYYYMMDD.",
    )

    def validate_pattern(self, value: str) -> str:
        if "{week}" not in value:
            raise serializers.ValidationError("the pattern must contain {week}")
        try:
            value.format(tier="t1", summary="ats", week="20250101")
        except (KeyError, IndexError, ValueError) as exc:
            raise serializers.ValidationError(
                f"only {{tier}}, {{summary}} and {{week}} may be used: {exc}"
            ) from None
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["start"] > attrs["end"]:
            raise serializers.ValidationError(
                {"end": [f"end week {attrs['end']} is before start week {attrs['start']}"]}
            )
        span = weeks_between(attrs["start"], attrs["end"])
        if span > MAX_BACKFILL_WEEKS:
            raise serializers.ValidationError(
                {"end": [f"{span} weeks requested; at most {MAX_BACKFILL_WEEKS} per backfill"]}
            )
        return attrs


def week_file_name(params: dict[str, Any], week: date) -> str:
    """The file name a backfill looks for in its directory for ``week``."""
    return str(params["pattern"]).format(
        tier=params["tier"].lower(), summary=SUMMARY_NAMES[params["ats"]], week=f"{week:%Y%m%d}"
    )


def backfill_files(params: dict[str, Any]) -> tuple[list[tuple[date, str]], list[date]]:
    """The (week, inbox path) pairs a backfill would run, and the weeks without a
    file (a name that is no regular file inside the inbox counts as missing)."""
    directory = params["directory"]
    found, missing = [], []
    for week in iter_weeks(params["start"], params["end"]):
        name = week_file_name(params, week)
        relative = name if directory == "." else f"{directory}/{name}"
        if inbox.is_inbox_file(relative):
            found.append((week, inbox.check_relative(relative)))
        else:
            missing.append(week)
    return found, missing


@pipeline(
    "otc.backfill",
    params=BackfillParams,
    timeout_seconds=6 * 3600,
    max_requeues=RERUN_SAFE_REQUEUES,
)
def backfill_pipeline(ctx: RunContext) -> dict[str, Any]:
    """Run the full ETL for a range of weeks: one child execution per week."""
    p = ctx.params
    directory = p["directory"]
    if not inbox.is_inbox_dir(directory):
        raise FileNotFoundError(f"no such directory in the inbox: {directory}")
    found, missing = backfill_files(p)
    if not found:
        raise FileNotFoundError(
            f"no files for {p['tier']} weeks {p['start']}..{p['end']} in inbox "
            f"directory {directory} (pattern {p['pattern']!r})"
        )
    if missing:
        ctx.event("weeks_missing", weeks=[week.isoformat() for week in missing])
    params = [
        {"path": path, "tier": p["tier"], "week": week.isoformat(), "ats": p["ats"]}
        for week, path in found
    ]
    dispatched = dispatch_children(ctx, "otc.full_etl", params, lane="backfill")
    children = [{"week": c["week"], "execution_id": c["execution_id"]} for c in dispatched]
    return {
        "dispatched": len(children),
        "children": children,
        "missing_weeks": [week.isoformat() for week in missing],
    }
