"""The execution ledger: one row per unit of work, and its append-only event history."""

from __future__ import annotations

import uuid

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from spine.time import utc_now


class ExecutionStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    TIMED_OUT = "timed_out", "Timed out"


TERMINAL_STATUSES = frozenset(
    {
        ExecutionStatus.SUCCEEDED,
        ExecutionStatus.FAILED,
        ExecutionStatus.CANCELLED,
        ExecutionStatus.TIMED_OUT,
    }
)

# The status machine. pending → queued → running → one terminal state; a pending or
# queued execution can be cancelled; a running one can be cancelled, can be returned to
# queued by the reaper (worker lost, retry policy allows), or ends.
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    ExecutionStatus.PENDING: frozenset({ExecutionStatus.QUEUED, ExecutionStatus.CANCELLED}),
    ExecutionStatus.QUEUED: frozenset(
        {
            ExecutionStatus.RUNNING,
            ExecutionStatus.PENDING,
            ExecutionStatus.CANCELLED,
            ExecutionStatus.FAILED,
        }
    ),
    ExecutionStatus.RUNNING: frozenset(
        {
            ExecutionStatus.SUCCEEDED,
            ExecutionStatus.FAILED,
            ExecutionStatus.TIMED_OUT,
            ExecutionStatus.CANCELLED,
            ExecutionStatus.QUEUED,
        }
    ),
    ExecutionStatus.SUCCEEDED: frozenset(),
    ExecutionStatus.FAILED: frozenset(),
    ExecutionStatus.CANCELLED: frozenset(),
    ExecutionStatus.TIMED_OUT: frozenset(),
}


class TriggerSource(models.TextChoices):
    API = "api", "API"
    CLI = "cli", "Command line"
    SCHEDULE = "schedule", "Schedule"
    RETRY = "retry", "Retry"
    ADMIN = "admin", "Admin"


class Execution(models.Model):
    """One unit of work: a pipeline run with validated params, tracked to its end."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    pipeline = models.CharField(max_length=100)
    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=16, choices=ExecutionStatus.choices, default=ExecutionStatus.PENDING
    )
    lane = models.CharField(max_length=32, default="default")
    trigger_source = models.CharField(max_length=16, choices=TriggerSource.choices)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    request_id = models.CharField(max_length=128, blank=True, default="")
    attempt = models.PositiveIntegerField(default=1)
    lock_key = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(default=utc_now, editable=False)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # Fencing token of the run that owns a running execution: a runner whose token no
    # longer matches (reaped, cancelled) must not write its outcome over the ledger.
    run_token = models.UUIDField(null=True, blank=True, editable=False)
    # Messages handed to the backend so far; part of the Celery task id.
    submissions = models.PositiveIntegerField(default=0)
    # Times the reaper returned the execution to the queue after its worker was lost.
    redeliveries = models.PositiveIntegerField(default=0)
    # Not to be started before this moment (a lock wait or a delayed dispatch).
    run_after = models.DateTimeField(null=True, blank=True)
    result = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    error = models.TextField(blank=True, default="")
    traceback = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "created_at"], name="exec_status_created"),
            models.Index(fields=["pipeline", "created_at"], name="exec_pipeline_created"),
            models.Index(fields=["lane", "status"], name="exec_lane_status"),
            models.Index(fields=["trigger_source", "created_at"], name="exec_trigger_created"),
            models.Index(fields=["status", "heartbeat_at"], name="exec_status_heartbeat"),
            models.Index(fields=["created_at"], name="exec_created"),
        ]
        permissions = [
            ("cancel_execution", "Can cancel an execution"),
            ("rerun_execution", "Can re-run an execution"),
        ]

    def __str__(self) -> str:
        return f"{self.pipeline} {self.id} ({self.status})"

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class ExecutionEvent(models.Model):
    """One entry in an execution's history; never updated or deleted by hand."""

    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="events")
    type = models.CharField(max_length=64)
    timestamp = models.DateTimeField(db_index=True)
    data = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)

    class Meta:
        ordering = ["timestamp", "id"]
        indexes = [models.Index(fields=["execution", "timestamp"], name="event_exec_ts")]

    def __str__(self) -> str:
        return f"{self.type} @ {self.timestamp:%Y-%m-%d %H:%M:%S}"

    def save(self, *args: object, **kwargs: object) -> None:
        if self.pk is not None and not kwargs.get("force_insert"):
            raise ValueError("execution events are append-only")
        super().save(*args, **kwargs)  # type: ignore[arg-type]


class ExecutionLock(models.Model):
    """A concurrency key held by one execution until released or expired."""

    key = models.CharField(max_length=200, primary_key=True)
    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="locks")
    # The run holding the key; a replaced run (reaped, requeued) cannot release it.
    run_token = models.UUIDField(null=True, blank=True)
    acquired_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.key} → {self.execution_id}"
