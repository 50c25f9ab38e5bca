"""OTC pipelines: ingest → normalize → compute, the full ETL, and backfills.

Registered with the execution registry on import (the executions app autodiscovers
``pipelines`` modules). Handlers are thin: they resolve params to a capture and call
the services in :mod:`otc.services`, which hold the rules and the transactions.

* ``otc.ingest_file`` — a FINRA download file in the inbox → a staged capture (or "unchanged");
* ``otc.normalize`` — a capture of (tier, week, ats) → normalized rows;
* ``otc.compute`` — its analytics, behind the quality gate (grade F fails the run);
  passing it makes a staged capture the week's current one;
* ``otc.full_etl`` — the three as steps of ONE execution on the capture its ingest
  made, each recorded as ``step_started`` / ``step_finished`` events; each step
  commits on its own, so a failure keeps the staged capture (failed or rejected) and
  its rows for inspection, while the week's current capture keeps answering. An
  unchanged file (the current capture's bytes) stops after the ingest step; the bytes
  of a newer capture that failed or was rejected re-run normalize and compute on it;
* ``otc.backfill`` — a range of weeks from an inbox directory: one ``otc.full_etl``
  child execution per week, dispatched on the ``backfill`` lane with this execution
  as parent; weeks without a file are listed, not guessed.

``week`` is any date of the reporting week (stored as its Monday), from 2014 through
the current week; ``tier`` is T1, T2
or OTC (the API's OTCE is accepted); ``ats`` defaults to false, i.e. FINRA's non-ATS
OTC summary, which is what its weekly OTC download (and the real sample) holds.
File paths in params are relative to the inbox (``SPINE_INBOX_DIR``, :mod:`otc.inbox`):
anything that would leave it is refused at validation and again at run time.
Every pipeline touching one week locks ``otc:{tier}:{week}``, so two runs for the
same tier and week never interleave.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from rest_framework import serializers

from executions.registry import RERUN_SAFE_REQUEUES, PipelineParams, pipeline
from executions.run_context import RunContext
from otc import inbox
from otc.models import Capture, CaptureState
from otc.parser import parse_tier
from otc.services import IngestResult, compute_capture, normalize_capture
from otc.services.errors import CaptureNotFound
from otc.services.ingest import ingest_handle
from otc.weeks import iter_weeks, reporting_week, week_start, weeks_between

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
    """Any date (YYYY-MM-DD) in the reporting week; stored as the week's Monday.

    Only weeks FINRA can have data for: from 2014 (:data:`otc.weeks.FIRST_WEEK`)
    through the current week. A read filter passes ``bounded=False``: a week outside
    that range is simply one without data.
    """

    def __init__(self, *, bounded: bool = True, **kwargs: Any) -> None:
        self.bounded = bounded
        super().__init__(**kwargs)

    def to_internal_value(self, value: Any) -> date:
        day = super().to_internal_value(value)
        if not self.bounded:
            return week_start(day)
        try:
            return reporting_week(day)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None


def _tier(help_text: str = "T1, T2 or OTC (OTCE accepted).") -> TierField:
    return TierField(help_text=help_text)


def _ats() -> serializers.BooleanField:
    return serializers.BooleanField(
        default=False, help_text="True for ATS volume; false (default) for non-ATS OTC volume."
    )


class WeekParams(PipelineParams):
    """One capture key: tier, reporting week and ATS flag."""

    tier = _tier()
    week = WeekField(
        help_text="Any date in the reporting week, 2014-01-06 through the current week; "
        "stored as its Monday."
    )
    ats = _ats()


class CaptureStepParams(WeekParams):
    """A capture key, and optionally which of the week's captures to work on."""

    capture = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=2**63 - 1,
        help_text="Capture id (of this tier, week and ATS flag). Default: the week's "
        "newest capture that is not superseded (a staged, failed or rejected one if it "
        "is newer than the current one).",
    )


class InboxPathField(serializers.CharField):
    """A path relative to the inbox (``SPINE_INBOX_DIR``); see :mod:`otc.inbox`."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 1000)
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        text = super().to_internal_value(data)
        try:
            return inbox.check_relative(text)
        except inbox.InboxPathError as exc:
            raise serializers.ValidationError(str(exc)) from None


class IngestFileParams(WeekParams):
    path = InboxPathField(
        help_text=(
            "The FINRA download file, relative to the inbox (SPINE_INBOX_DIR); "
            "absolute paths and '..' are refused."
        )
    )


class BackfillParams(PipelineParams):
    tier = _tier()
    start = WeekField(help_text="First week (any date in it), from 2014-01-06.")
    end = WeekField(help_text="Last week (any date in it), inclusive; not after the current week.")
    ats = _ats()
    directory = InboxPathField(
        help_text="Directory holding one file per week, relative to the inbox ('.' for the inbox)."
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


def target_capture(params: dict[str, Any]) -> Capture:
    """The capture a normalize or compute run works on (see ``CaptureStepParams``)."""
    kind = "ATS" if params["ats"] else "non-ATS"
    week = f"{params['tier']} {kind} week {params['week']}"
    captures = Capture.objects.of_key(params["tier"], params["week"], params["ats"])
    if params.get("capture") is not None:
        capture = captures.filter(pk=params["capture"]).first()
        if capture is None:
            raise CaptureNotFound(f"capture {params['capture']} is not a capture of {week}")
        return capture
    capture = (
        captures.exclude(state=CaptureState.SUPERSEDED).exclude(checksum="").order_by("-pk").first()
    )
    if capture is None:
        raise CaptureNotFound(f"no capture for {week}: ingest it first (otc.ingest_file)")
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
    return _ingest_inbox_file(ctx).as_dict()


def _ingest_inbox_file(ctx: RunContext) -> IngestResult:
    """Ingest the inbox file the params name, opened again safely now (it may have
    been swapped for a symlink since validation)."""
    p = ctx.params
    with inbox.open_inbox_file(p["path"]) as handle:
        return ingest_handle(
            handle,
            source=p["path"],
            tier=p["tier"],
            week=p["week"],
            ats=p["ats"],
            execution=ctx.execution,
        )


@pipeline(
    "otc.normalize",
    params=CaptureStepParams,
    lock_key=WEEK_LOCK,
    timeout_seconds=1800,
    max_requeues=RERUN_SAFE_REQUEUES,
)
def normalize_pipeline(ctx: RunContext) -> dict[str, Any]:
    """Normalize a capture of a week (its newest by default); duplicates become rejects."""
    return normalize_capture(target_capture(ctx.params).pk).as_dict()


@pipeline(
    "otc.compute",
    params=CaptureStepParams,
    lock_key=WEEK_LOCK,
    timeout_seconds=1800,
    max_requeues=RERUN_SAFE_REQUEUES,
)
def compute_pipeline(ctx: RunContext) -> dict[str, Any]:
    """Compute a capture's analytics behind the quality gate; a staged capture that
    passes becomes the week's current one."""
    return compute_capture(target_capture(ctx.params).pk).as_dict()


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
    steps: dict[str, Any] = {}
    ingested = run_step(ctx, steps, "ingest", lambda: _ingest_inbox_file(ctx))
    return normalize_and_compute(ctx, steps, ingested)


def normalize_and_compute(
    ctx: RunContext, steps: dict[str, Any], ingested: dict[str, Any]
) -> dict[str, Any]:
    """The full ETL after its ingest step (files and ``otc.fetch_week`` alike): stop
    for an unchanged capture that is current and computed, else normalize and compute
    the ingested (or resumed) capture."""
    capture_id = ingested["capture_id"]
    capture = Capture.objects.get(pk=capture_id)
    if ingested["status"] == "unchanged" and capture.is_current and capture.computed_at:
        return {
            "status": "unchanged",
            "capture_id": capture_id,
            "rejects": capture.reject_count,
            "steps": steps,
        }
    run_step(ctx, steps, "normalize", lambda: normalize_capture(capture_id))
    computed = run_step(ctx, steps, "compute", lambda: compute_capture(capture_id))
    capture.refresh_from_db(fields=["reject_count"])
    return {
        "status": ingested["status"],
        "capture_id": capture_id,
        # Normalize adds the duplicates to the parser's rejects.
        "rejects": capture.reject_count,
        "grade": computed["grade"],
        "promoted": computed["promoted"],
        "superseded_capture_id": computed["superseded_capture_id"],
        "warnings": ingested["warnings"] + computed["warnings"],
        "steps": steps,
    }


def week_file_name(params: dict[str, Any], week: date) -> str:
    """The file name a backfill looks for in its directory for ``week``."""
    return str(params["pattern"]).format(tier=params["tier"].lower(), week=f"{week:%Y%m%d}")


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
    from executions.dispatcher import dispatch

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
    children = []
    for week, path in found:
        ctx.raise_if_cancelled()
        child = dispatch(
            "otc.full_etl",
            {"path": path, "tier": p["tier"], "week": week.isoformat(), "ats": p["ats"]},
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
