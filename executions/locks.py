"""Concurrency keys: one running execution per key, held in a table row that expires."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, transaction

from executions.models import Execution, ExecutionLock
from spine.time import utc_now


@dataclass(frozen=True)
class LockOutcome:
    """The result of an acquisition attempt; ``holder_id`` names the blocking execution."""

    acquired: bool
    key: str
    holder_id: uuid.UUID | None = None
    taken_over_from: uuid.UUID | None = None


def acquire_lock(
    key: str, execution: Execution, run_token: uuid.UUID, *, ttl_seconds: float
) -> LockOutcome:
    """Take ``key`` for this run unless another execution holds it and it has not expired."""
    now = utc_now()
    expires_at = now + timedelta(seconds=ttl_seconds)
    with transaction.atomic():
        lock = ExecutionLock.objects.select_for_update().filter(key=key).first()
        if lock is None:
            try:
                with transaction.atomic():
                    ExecutionLock.objects.create(
                        key=key,
                        execution=execution,
                        run_token=run_token,
                        acquired_at=now,
                        expires_at=expires_at,
                    )
            except IntegrityError:
                holder = (
                    ExecutionLock.objects.filter(key=key)
                    .values_list("execution_id", flat=True)
                    .first()
                )
                return LockOutcome(acquired=False, key=key, holder_id=holder)
            return LockOutcome(acquired=True, key=key)
        previous = lock.execution_id
        if previous != execution.pk and lock.expires_at > now:
            return LockOutcome(acquired=False, key=key, holder_id=previous)
        lock.execution = execution
        lock.run_token = run_token
        lock.acquired_at = now
        lock.expires_at = expires_at
        lock.save(update_fields=["execution", "run_token", "acquired_at", "expires_at"])
        return LockOutcome(
            acquired=True,
            key=key,
            taken_over_from=previous if previous != execution.pk else None,
        )


def release_lock(execution: Execution, run_token: uuid.UUID | None = None) -> int:
    """Release what the execution holds (only this run's locks when a token is given)."""
    locks = ExecutionLock.objects.filter(execution_id=execution.pk)
    if run_token is not None:
        locks = locks.filter(run_token=run_token)
    deleted, _ = locks.delete()
    return deleted


def purge_expired_locks() -> int:
    """Delete locks past their expiry (they no longer block anyone; this tidies up)."""
    deleted, _ = ExecutionLock.objects.filter(expires_at__lte=utc_now()).delete()
    return deleted
