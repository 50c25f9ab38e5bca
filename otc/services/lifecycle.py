"""Capture lifecycle: a staged capture becomes current (superseding the old) or fails."""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import DatabaseError, transaction
from django.utils.text import Truncator

from otc.models import PENDING_STATES, Capture, CaptureState
from otc.services.errors import StaleCapture

__all__ = ["FAILURE_CHARS", "failure_reason", "mark_pending", "promote", "record_failure"]

logger = logging.getLogger(__name__)

#: The longest ``Capture.failure`` kept; longer reasons are cut with an ellipsis.
FAILURE_CHARS = 2000


def promote(capture: Capture, *, now: datetime) -> Capture | None:
    """Make ``capture`` (not current yet) its week's current capture, superseding the
    one answering so far, which is returned. Runs in the caller's transaction."""
    previous = (
        Capture.objects.select_for_update()
        .current()
        .of_key(capture.tier, capture.week, capture.ats)
        .exclude(pk=capture.pk)
        .first()
    )
    if previous is not None and previous.pk > capture.pk:
        raise StaleCapture(
            f"capture {capture.pk} cannot become current: capture {previous.pk}, ingested "
            "after it, already is (ingest the file again to make its data current)"
        )
    if previous is not None:
        Capture.objects.filter(pk=previous.pk).update(
            state=CaptureState.SUPERSEDED, superseded_at=now, superseded_by=capture
        )
    Capture.objects.filter(pk=capture.pk).update(
        state=CaptureState.CURRENT, promoted_at=now, failure=""
    )
    capture.state, capture.promoted_at, capture.failure = CaptureState.CURRENT, now, ""
    return previous


def mark_pending(capture_id: int, state: CaptureState, reason: str = "") -> bool:
    """Set a capture that is not current (staged, failed or rejected) to ``state`` with
    ``reason``; a current or superseded capture is left alone. True if it changed."""
    changed = Capture.objects.filter(pk=capture_id, state__in=PENDING_STATES).update(
        state=state, failure=Truncator(reason).chars(FAILURE_CHARS)
    )
    return bool(changed)


def failure_reason(step: str, exc: BaseException) -> str:
    """The ``failure`` recorded for a step that raised: the step, error type and message."""
    return f"{step}: {type(exc).__name__}: {exc}"


def record_failure(capture_id: int, step: str, exc: BaseException) -> None:
    """Mark a capture that is not current ``failed`` because ``step`` raised ``exc``.
    Called while ``exc`` propagates: if the database cannot take the mark either (it
    is down, say), that is logged and ``exc`` stays the error the caller sees."""
    try:
        with transaction.atomic():
            mark_pending(capture_id, CaptureState.FAILED, failure_reason(step, exc))
    except DatabaseError:
        logger.warning("could not mark capture %s failed after %s", capture_id, step, exc_info=True)
