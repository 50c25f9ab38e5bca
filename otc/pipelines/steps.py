"""What the OTC week pipelines share: the week lock, the step runner, the ETL's tail and
the batched dispatch of child executions."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from django.db import transaction

from executions.dispatcher import dispatch
from executions.run_context import RunContext
from otc.models import Capture
from otc.services import compute_capture, normalize_capture
from otc.services.errors import CaptureNotFound

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "WEEK_LOCK",
    "dispatch_children",
    "normalize_and_compute",
    "run_step",
    "target_capture",
]

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


#: Children created per database transaction.
DEFAULT_BATCH_SIZE = 50


def dispatch_children(
    ctx: RunContext,
    pipeline: str,
    params: Sequence[dict[str, Any]],
    *,
    lane: str = "backfill",
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_batch: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    """Dispatch one ``pipeline`` child of ``ctx``'s execution per params, ``batch_size``
        per database transaction (the children of a batch and their events commit together,
        and are handed to the backend after that commit). Checks for cancellation between
        batches, so a stopped parent dispatches no further batch; one ``children_dispatched``
    event per batch. Returns, per child, its
        params and ``execution_id``; ``on_batch`` is called with the count so far."""
    children: list[dict[str, Any]] = []
    for start in range(0, len(params), batch_size):
        ctx.raise_if_cancelled()
        batch = []
        with transaction.atomic():
            for child_params in params[start : start + batch_size]:
                child = dispatch(
                    pipeline,
                    child_params,
                    trigger_source=ctx.execution.trigger_source,
                    parent=ctx.execution,
                    lane=lane,
                    attempt=1,
                )
                batch.append({**child_params, "execution_id": str(child.pk)})
            ctx.event(
                "children_dispatched",
                pipeline=pipeline,
                count=len(batch),
                dispatched=len(children) + len(batch),
                total=len(params),
                execution_ids=[c["execution_id"] for c in batch],
            )
        children.extend(batch)
        if on_batch is not None:
            on_batch(len(children))
    return children
