"""Dead letters: failed executions parked with everything an operator needs.

One row per failed execution. A replay creates a new execution (never reruns the
old one); if that fails too it gets its own dead letter, linked to the earlier one
through ``previous``, so the lineage of a repeatedly failing job reads as a chain
with a growing ``attempts`` count. Rows change only through :mod:`dlq.services`.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from spine.time import utc_now


class FailureKind(models.TextChoices):
    ERROR = "error", "Error"
    TIMEOUT = "timeout", "Timeout"
    LOCK = "lock", "Lock conflict"
    WORKER_LOST = "worker_lost", "Worker lost"


class Resolution(models.TextChoices):
    REPLAYED = "replayed", "Replayed"
    RESOLVED = "resolved", "Resolved manually"
    DISCARDED = "discarded", "Discarded"


class DeadLetterQuerySet(models.QuerySet["DeadLetter"]):
    def open(self) -> DeadLetterQuerySet:
        return self.filter(resolved_at__isnull=True)

    def closed(self) -> DeadLetterQuerySet:
        return self.filter(resolved_at__isnull=False)


class DeadLetter(models.Model):
    """A failed execution waiting for an automatic retry or a person.

    ``attempts`` is the failed execution's attempt number (1 for the first run, one
    more for each replay in its lineage); ``max_retries`` is the pipeline's automatic
    retry budget when the letter was parked. ``next_retry_at`` is set only while that
    budget lasts; when it is empty the letter waits for a person.
    """

    execution = models.ForeignKey(
        "executions.Execution",
        # Protect: a failure must never vanish because its execution was cleaned up;
        # purge the dead letter (retention) before deleting the execution.
        on_delete=models.PROTECT,
        related_name="dead_letters",
    )
    pipeline = models.CharField(max_length=100)
    params = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True, default="")
    traceback = models.TextField(blank=True, default="")
    failure_kind = models.CharField(max_length=16, choices=FailureKind.choices)
    # Grouping (dlq.signature): the exception class and the hash of pipeline, kind,
    # class and normalised message.
    error_class = models.CharField(max_length=200, blank=True, default="")
    signature = models.CharField(max_length=16, blank=True, default="")
    attempts = models.PositiveIntegerField(default=1)
    max_retries = models.PositiveIntegerField(default=0)
    next_retry_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=utc_now)
    last_retry_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution = models.CharField(max_length=16, choices=Resolution.choices, blank=True, default="")
    replay_execution = models.ForeignKey(
        "executions.Execution",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="replayed_from",
    )
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    note = models.TextField(blank=True, default="")
    # Edit and replay: the params as parked (set on the first edit) and every change,
    # ``[{"by": username, "at": ISO time, "diff": {key: {"old": .., "new": ..}}}]``.
    original_params = models.JSONField(null=True, blank=True)
    params_changes = models.JSONField(default=list, blank=True)
    previous = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="next_letters",
        help_text="The dead letter whose replay produced this failed execution.",
    )

    objects = DeadLetterQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["execution"],
                condition=Q(resolved_at__isnull=True),
                name="dlq_one_open_per_execution",
            ),
            models.CheckConstraint(
                condition=(Q(resolved_at__isnull=True) & Q(resolution=""))
                | (Q(resolved_at__isnull=False) & ~Q(resolution="")),
                name="dlq_resolution_matches_resolved_at",
            ),
            models.CheckConstraint(
                condition=Q(replay_execution__isnull=True) | Q(resolution="replayed"),
                name="dlq_replay_link_only_when_replayed",
            ),
        ]
        indexes = [
            models.Index(fields=["pipeline", "created_at"], name="dlq_pipeline_created"),
            models.Index(fields=["failure_kind", "created_at"], name="dlq_kind_created"),
            models.Index(fields=["resolved_at", "created_at"], name="dlq_resolved_created"),
            models.Index(fields=["created_at"], name="dlq_created"),
            models.Index(
                fields=["signature", "created_at"],
                condition=Q(resolved_at__isnull=True),
                name="dlq_open_signature",
            ),
            models.Index(fields=["signature"], name="dlq_signature"),
            models.Index(fields=["error_class"], name="dlq_error_class"),
            models.Index(
                fields=["next_retry_at"],
                condition=Q(resolved_at__isnull=True, next_retry_at__isnull=False),
                name="dlq_open_due",
            ),
        ]
        permissions = [("replay_deadletter", "Can replay a dead letter")]

    def __str__(self) -> str:
        return f"dead letter {self.pk} · {self.pipeline} ({self.state_label})"

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None

    @property
    def retries_used(self) -> int:
        """Retries already spent in this lineage (the first run is not a retry)."""
        return max(self.attempts - 1, 0)

    @property
    def retries_exhausted(self) -> bool:
        """True when no automatic retry is left in the pipeline's budget."""
        return self.retries_used >= self.max_retries

    @property
    def over_max_retries(self) -> bool:
        """True when the lineage has already gone past its retry budget.

        After the automatic budget is spent a person may replay once; if that replay
        fails too, the lineage is *over* its budget and a further replay must be forced.
        """
        return self.retries_used > self.max_retries

    @property
    def attempts_label(self) -> str:
        """E.g. ``2 (retries allowed: 1)``, plus a warning once the lineage is past it."""
        label = f"{self.attempts} (retries allowed: {self.max_retries})"
        return f"{label}, over budget" if self.over_max_retries else label

    @property
    def state_label(self) -> str:
        return "open" if self.is_open else self.get_resolution_display().lower()
