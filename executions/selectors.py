"""Reads of the execution ledger and the pipeline registry, for the API and commands.

Writes (dispatching, cancelling, status changes) live in the services and the
Dispatcher; these functions only build querysets and look things up, so views stay
thin and every reader sees the same ordering.
"""

from __future__ import annotations

from django.db.models import QuerySet

from executions.models import Execution, ExecutionEvent
from executions.registry import Pipeline, registry


def execution_list() -> QuerySet[Execution]:
    """Every execution, newest first (id breaks ties so pages never overlap)."""
    return Execution.objects.order_by("-created_at", "-id")


def execution_events(execution: Execution) -> QuerySet[ExecutionEvent]:
    """An execution's history in the order it happened."""
    return ExecutionEvent.objects.filter(execution=execution).order_by("timestamp", "id")


def pipeline_list() -> list[Pipeline]:
    """Every registered pipeline, by name."""
    return list(registry)


def pipeline_get(name: str) -> Pipeline:
    """One registered pipeline; raises ``UnknownPipeline``."""
    return registry.get(name)
