"""What the OTC week pipelines share: the week lock, the step runner and the ETL's tail."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from executions.run_context import RunContext
from otc.models import Capture
from otc.services import compute_capture, normalize_capture
from otc.services.errors import CaptureNotFound

__all__ = ["WEEK_LOCK", "normalize_and_compute", "run_step", "target_capture"]

#: Every pipeline touching one week holds this lock, so two never interleave.
WEEK_LOCK = "otc:{tier}:{week}"


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
    capture = captures.newest_unsuperseded()
    if capture is None:
        raise CaptureNotFound(f"no capture for {week}: ingest it first (otc.ingest_file)")
    return capture


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
