"""Pipelines ``otc.ingest_file``, ``otc.normalize``, ``otc.compute`` and ``otc.full_etl``."""

from __future__ import annotations

from typing import Any

from executions.registry import RERUN_SAFE_REQUEUES, pipeline
from executions.run_context import RunContext
from otc import inbox
from otc.params import CaptureStepParams, IngestFileParams
from otc.pipelines.steps import WEEK_LOCK, normalize_and_compute, run_step, target_capture
from otc.services import IngestResult, compute_capture, normalize_capture
from otc.services.ingest import ingest_handle

__all__ = ["compute_pipeline", "full_etl_pipeline", "ingest_file_pipeline", "normalize_pipeline"]


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
