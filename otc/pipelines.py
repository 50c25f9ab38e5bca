"""OTC pipelines: ingest → normalize → compute, the full ETL, and backfills.

Registered with the execution registry on import (the executions app autodiscovers
``pipelines`` modules). Handlers are thin: they resolve params to a capture and call
the services in :mod:`otc.services`, which hold the rules and the transactions.

* ``otc.ingest_file`` — a FINRA download file → a capture (or "unchanged");
* ``otc.normalize`` — the current capture of (tier, week, ats) → normalized rows;
* ``otc.compute`` — its analytics, behind the quality gate (grade F fails the run);
* ``otc.full_etl`` — the three as steps of ONE execution, each recorded as
  ``step_started`` / ``step_finished`` events; each step commits on its own, so a
  quality-gate failure keeps the valid capture and its normalized rows for a re-run
  of ``otc.compute``. An unchanged file whose capture is already computed stops after
  the ingest step;
* ``otc.backfill`` — a range of weeks from a directory of files: one ``otc.full_etl``
  child execution per week, dispatched on the ``backfill`` lane with this execution
  as parent; weeks without a file are listed, not guessed.

``week`` is any date of the reporting week (stored as its Monday); ``tier`` is T1, T2
or OTC (the API's OTCE is accepted); ``ats`` defaults to false, i.e. FINRA's non-ATS
OTC summary, which is what its weekly OTC download (and the real sample) holds.
Every pipeline touching one week locks ``otc:{tier}:{week}``, so two runs for the
same tier and week never interleave.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from rest_framework import serializers

from executions.registry import RERUN_SAFE_REQUEUES, PipelineParams, pipeline
from executions.run_context import RunContext
from otc.models import Capture
from otc.parser import parse_tier
from otc.services import compute_capture, ingest_file, normalize_capture
from otc.services.errors import CaptureNotFound
from spine.time import iter_weeks, week_start, weeks_between

WEEK_LOCK = "otc:{tier}:{week}"
#: The most weeks one backfill may span (ten years).
MAX_BACKFILL_WEEKS = 520
#: Default file name pattern in a backfill directory, as ``otc generate`` writes them.
DEFAULT_PATTERN = "finra_{tier}_{week}.psv"


class TierField(serializers.CharField):
    """T1, T2 or OTC; FINRA's API spelling OTCE is accepted and stored as OTC."""

    def to_internal_value(self, data: Any) -> str:
        text = super().to_internal_value(data)
        try:
            return parse_tier(text)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None


class WeekField(serializers.DateField):
    """Any date (YYYY-MM-DD) in the reporting week; stored as the week's Monday."""

    def to_internal_value(self, value: Any) -> date:
        return week_start(super().to_internal_value(value))


def _tier(help_text: str = "T1, T2 or OTC (OTCE accepted).") -> TierField:
    return TierField(help_text=help_text)


def _ats() -> serializers.BooleanField:
    return serializers.BooleanField(
        default=False, help_text="True for ATS volume; false (default) for non-ATS OTC volume."
    )


class WeekParams(PipelineParams):
    """One capture key: tier, reporting week and ATS flag."""

    tier = _tier()
    week = WeekField(help_text="Any date in the reporting week; stored as its Monday.")
    ats = _ats()


class IngestFileParams(WeekParams):
    path = serializers.CharField(
        max_length=1000, help_text="Path of the FINRA download file, as the worker sees it."
    )


class BackfillParams(PipelineParams):
    tier = _tier()
    start = WeekField(help_text="First week (any date in it).")
    end = WeekField(help_text="Last week (any date in it), inclusive.")
    ats = _ats()
    directory = serializers.CharField(
        max_length=1000, help_text="Directory holding one file per week."
    )
    pattern = serializers.CharField(
        max_length=200,
        default=DEFAULT_PATTERN,
        help_text="File name per week; {tier} is the lower-case tier, {week} is YYYYMMDD.",
    )

    def validate_pattern(self, value: str) -> str:
        if "{week}" not in value:
            raise serializers.ValidationError("the pattern must contain {week}")
        try:
            value.format(tier="t1", week="20250101")
        except (KeyError, IndexError, ValueError) as exc:
            raise serializers.ValidationError(
                f"only {{tier}} and {{week}} may be used: {exc}"
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


def _current(params: dict[str, Any]) -> Capture:
    capture = Capture.objects.filter(
        tier=params["tier"],
        week=params["week"],
        ats=params["ats"],
        superseded_at__isnull=True,
    ).first()
    if capture is None:
        kind = "ATS" if params["ats"] else "non-ATS"
        raise CaptureNotFound(
            f"no capture for {params['tier']} {kind} week {params['week']}: "
            "ingest it first (otc.ingest_file)"
        )
    return capture


@pipeline(
    "otc.ingest_file",
    params=IngestFileParams,
    lock_key=WEEK_LOCK,
    timeout_seconds=1800,
    max_requeues=RERUN_SAFE_REQUEUES,
)
def ingest_file_pipeline(ctx: RunContext) -> dict[str, Any]:
    """Ingest a FINRA weekly download file as a capture (a no-op when unchanged)."""
    p = ctx.params
    result = ingest_file(
        p["path"], tier=p["tier"], week=p["week"], ats=p["ats"], execution=ctx.execution
    )
    return result.as_dict()


@pipeline(
    "otc.normalize",
    params=WeekParams,
    lock_key=WEEK_LOCK,
    timeout_seconds=1800,
    max_requeues=RERUN_SAFE_REQUEUES,
)
def normalize_pipeline(ctx: RunContext) -> dict[str, Any]:
    """Normalize the current capture of a week; duplicates become rejects."""
    return normalize_capture(_current(ctx.params).pk).as_dict()


@pipeline(
    "otc.compute",
    params=WeekParams,
    lock_key=WEEK_LOCK,
    timeout_seconds=1800,
    max_requeues=RERUN_SAFE_REQUEUES,
)
def compute_pipeline(ctx: RunContext) -> dict[str, Any]:
    """Compute the analytics of a week's current capture behind the quality gate."""
    return compute_capture(_current(ctx.params).pk).as_dict()


def run_step(
    ctx: RunContext, steps: dict[str, Any], name: str, run: Callable[[], Any]
) -> dict[str, Any]:
    """One step of a composite pipeline: a cancellation check, ``step_started`` /
    ``step_finished`` events, and its result (``run().as_dict()``) kept in ``steps``."""
    ctx.raise_if_cancelled()
    ctx.event("step_started", step=name)
    result = run().as_dict()
    ctx.event("step_finished", step=name, result=result)
    steps[name] = result
    return result


@pipeline(
    "otc.full_etl",
    params=IngestFileParams,
    lock_key=WEEK_LOCK,
    timeout_seconds=3600,
    max_requeues=RERUN_SAFE_REQUEUES,
)
def full_etl_pipeline(ctx: RunContext) -> dict[str, Any]:
    """Ingest, normalize and compute one week's file, as steps of one execution."""
    p = ctx.params
    steps: dict[str, Any] = {}
    ingested = run_step(
        ctx,
        steps,
        "ingest",
        lambda: ingest_file(
            p["path"], tier=p["tier"], week=p["week"], ats=p["ats"], execution=ctx.execution
        ),
    )
    return normalize_and_compute(ctx, steps, ingested)


def normalize_and_compute(
    ctx: RunContext, steps: dict[str, Any], ingested: dict[str, Any]
) -> dict[str, Any]:
    """The full ETL after its ingest step (files and ``otc.fetch_week`` alike): stop
    for an unchanged capture that is already computed, else normalize and compute."""
    capture_id = ingested["capture_id"]
    capture = Capture.objects.get(pk=capture_id)
    if ingested["status"] == "unchanged" and capture.computed_at is not None:
        return {"status": "unchanged", "capture_id": capture_id, "steps": steps}
    run_step(ctx, steps, "normalize", lambda: normalize_capture(capture_id))
    computed = run_step(ctx, steps, "compute", lambda: compute_capture(capture_id))
    return {
        "status": ingested["status"],
        "capture_id": capture_id,
        "grade": computed["grade"],
        "warnings": ingested["warnings"] + computed["warnings"],
        "steps": steps,
    }


def backfill_files(params: dict[str, Any]) -> tuple[list[tuple[date, Path]], list[date]]:
    """The (week, file) pairs a backfill would run, and the weeks without a file."""
    directory = Path(params["directory"])
    found, missing = [], []
    for week in iter_weeks(params["start"], params["end"]):
        name = params["pattern"].format(tier=params["tier"].lower(), week=f"{week:%Y%m%d}")
        path = directory / name
        if path.is_file():
            found.append((week, path))
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
    from executions.dispatcher import dispatch

    p = ctx.params
    directory = Path(p["directory"])
    if not directory.is_dir():
        raise FileNotFoundError(f"backfill directory does not exist: {directory}")
    found, missing = backfill_files(p)
    if not found:
        raise FileNotFoundError(
            f"no files for {p['tier']} weeks {p['start']}..{p['end']} in {directory} "
            f"(pattern {p['pattern']!r})"
        )
    if missing:
        ctx.event("weeks_missing", weeks=[week.isoformat() for week in missing])
    children = []
    for week, path in found:
        ctx.raise_if_cancelled()
        child = dispatch(
            "otc.full_etl",
            {"path": str(path), "tier": p["tier"], "week": week.isoformat(), "ats": p["ats"]},
            trigger_source=ctx.execution.trigger_source,
            parent=ctx.execution,
            lane="backfill",
            attempt=1,
        )
        children.append({"week": week.isoformat(), "execution_id": str(child.pk)})
        ctx.event("child_dispatched", week=week.isoformat(), execution_id=str(child.pk))
    return {
        "dispatched": len(children),
        "children": children,
        "missing_weeks": [week.isoformat() for week in missing],
    }


# otc.fetch_week (FINRA's Query API) builds on the steps above, in its own module.
from otc import pipelines_fetch  # noqa: E402, F401
