"""A year of execution history for benchmarks, written straight to the ledger.

Past executions cannot be dispatched into the past, and a hundred thousand
dispatches would measure the Dispatcher, not the console; so the rows and their
events are bulk-inserted, shaped as the runner records them. Test support only:
product code creates executions through the Dispatcher.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime, timedelta


def fabricate_history(count: int, *, start: date, weeks: int, seed: int = 5) -> None:
    """``count`` executions spread over ``weeks`` weeks from ``start``: a schedule's
    maintenance runs, full ETLs with their three steps, 1 % failures; the newest five
    left pending, queued or running."""
    from executions.models import Execution, ExecutionEvent

    rng = random.Random(seed)
    span = timedelta(weeks=weeks).total_seconds()
    origin = datetime(start.year, start.month, start.day, tzinfo=UTC)
    batch: list[Execution] = []
    events: list[ExecutionEvent] = []

    def flush() -> None:
        Execution.objects.bulk_create(batch, batch_size=2000)
        ExecutionEvent.objects.bulk_create(events, batch_size=5000)
        batch.clear()
        events.clear()

    for n in range(count):
        created = origin + timedelta(seconds=span * n / count)
        etl = n % 20 == 0
        status = "failed" if rng.random() < 0.01 else "succeeded"
        pipeline = "otc.full_etl" if etl else rng.choice(("ops.reap", "ops.sweep", "diag.noop"))
        took = rng.uniform(20, 400) if etl else rng.uniform(0.05, 2)
        execution = Execution(
            id=uuid.uuid4(),
            pipeline=pipeline,
            params={"path": f"finra_T1_{created:%Y%m%d}.psv", "tier": "T1"} if etl else {},
            status=status,
            lane="backfill" if etl else "maintenance",
            trigger_source="schedule" if not etl else rng.choice(("api", "cli", "admin")),
            created_at=created,
            queued_at=created + timedelta(seconds=0.01),
            started_at=created + timedelta(seconds=0.2),
            finished_at=created + timedelta(seconds=0.2 + took),
            result={"ok": True} if status == "succeeded" else None,
            error="RuntimeError: no data for week" if status == "failed" else "",
        )
        batch.append(execution)
        stamps: list[tuple[str, float, dict[str, str]]] = [
            ("created", 0.0, {}),
            ("queued", 0.01, {}),
            ("started", 0.2, {}),
        ]
        if etl:
            cursor = 0.2
            for step, share in (("ingest", 0.5), ("normalize", 0.2), ("compute", 0.3)):
                stamps.append(("step_started", cursor, {"step": step}))
                cursor += took * share
                stamps.append(("step_finished", cursor, {"step": step}))
        stamps.append((status, 0.2 + took, {}))
        events.extend(
            ExecutionEvent(
                execution_id=execution.id,
                type=kind,
                timestamp=created + timedelta(seconds=offset),
                data=data,
            )
            for kind, offset, data in stamps
        )
        if len(batch) >= 5000:
            flush()
    flush()
    live = list(Execution.objects.order_by("-created_at")[:5])
    statuses = ("queued", "queued", "running", "running", "pending")
    for execution, status in zip(live, statuses, strict=False):
        Execution.objects.filter(pk=execution.pk).update(status=status, finished_at=None)
