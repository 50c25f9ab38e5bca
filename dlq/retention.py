"""The dead-letter queue's retention guard: a dead letter keeps its execution."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Exists, OuterRef

from dlq.models import DeadLetter
from executions.retention import register_retention_guard


def keeps_execution(released_before: datetime | None) -> Exists:
    """Executions that still have a dead letter (one resolved before ``released_before``
    counts as purged already)."""
    letters = DeadLetter.objects.filter(execution_id=OuterRef("pk"))
    if released_before is not None:
        letters = letters.exclude(resolved_at__lt=released_before)
    return Exists(letters)


def register() -> None:
    register_retention_guard(keeps_execution)
