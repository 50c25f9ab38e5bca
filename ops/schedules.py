"""Market Spine's periodic schedule, as django-celery-beat rows operators can edit.

:func:`ensure_schedules` writes the rows idempotently (docs/operations.md, "The schedule").
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from django.db import transaction
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

TASK = "spine.tasks.run_scheduled"
QUEUE = "maintenance"
PREFIX = "spine: "

Action = Literal["created", "unchanged", "kept", "reset"]


@dataclass(frozen=True)
class ScheduleSpec:
    """One periodic run: a maintenance pipeline, its params and when it runs."""

    key: str
    pipeline: str
    description: str
    params: dict[str, Any] = field(default_factory=dict)
    every: timedelta | None = None
    crontab: dict[str, str] | None = None

    @property
    def name(self) -> str:
        return f"{PREFIX}{self.key}"

    @property
    def kwargs(self) -> str:
        return json.dumps({"pipeline": self.pipeline, "params": self.params}, sort_keys=True)

    @property
    def expire_seconds(self) -> int | None:
        if self.every is None:
            return None
        return max(int(self.every.total_seconds() * 0.8), 30)

    def when(self) -> str:
        if self.every is not None:
            return f"every {int(self.every.total_seconds() // 60)} min"
        c = self.crontab or {}
        days = {"*": "daily", "2": "Tuesdays"}.get(c.get("day_of_week", "*"), c.get("day_of_week"))
        return f"{days} {int(c['hour']):02d}:{int(c['minute']):02d} UTC"


def _fetch(tier: str, minute: int) -> ScheduleSpec:
    delay = "2 weeks" if tier == "T1" else "4 weeks"
    return ScheduleSpec(
        key=f"otc fetch {tier}",
        pipeline="otc.fetch_scheduled",
        params={"tier": tier},
        crontab={"minute": str(minute), "hour": "6", "day_of_week": "2"},
        description=f"Fetch the newest published {tier} week from FINRA (published {delay} "
        "after the week ends, on Mondays; fetched on Tuesdays).",
    )


#: Days after a week's Monday that FINRA publishes it, per tier.
PUBLICATION_DELAY_DAYS = {"T1": 14, "T2": 28, "OTC": 28}


def _sync(tier: str, minute: int) -> ScheduleSpec:
    weeks = PUBLICATION_DELAY_DAYS[tier] // 7
    return ScheduleSpec(
        key=f"otc sync {tier}",
        pipeline="otc.sync",
        params={"tiers": [tier]},
        crontab={"minute": str(minute), "hour": "7", "day_of_week": "2"},
        description=f"Sync every {tier} week FINRA serves (ATS and non-ATS) into the archive: "
        f"missing and republished weeks. FINRA publishes a {tier} week {weeks} weeks after "
        "it, on a Monday, and corrects weeks later; this runs each Tuesday after the fetch.",
    )


SCHEDULES: tuple[ScheduleSpec, ...] = (
    ScheduleSpec(
        key="sweep pending executions",
        pipeline="ops.sweep",
        # With SPINE_SWEEP_LOST_AFTER_SECONDS (3 min), a lost message is republished
        # within about five minutes.
        every=timedelta(minutes=2),
        description="Hand executions the broker refused or lost to it again (runs on the "
        "worker that receives the tick, so it needs no second trip through the broker).",
    ),
    ScheduleSpec(
        key="reap silent executions",
        pipeline="ops.reap",
        every=timedelta(minutes=2),
        description="Requeue or fail running executions whose worker stopped beating.",
    ),
    ScheduleSpec(
        key="dead-letter retries",
        pipeline="ops.dlq_retry",
        every=timedelta(minutes=5),
        description="Replay dead letters whose automatic retry (exponential backoff) is due.",
    ),
    ScheduleSpec(
        key="retention cleanup",
        pipeline="ops.cleanup",
        crontab={"minute": "30", "hour": "3", "day_of_week": "*"},
        description="Delete finished executions and events past retention, and resolved "
        "dead letters past SPINE_DLQ_RETENTION_DAYS.",
    ),
    _fetch("T1", 0),
    _fetch("T2", 20),
    _fetch("OTC", 40),
    _sync("T1", 0),
    _sync("T2", 20),
    _sync("OTC", 40),
)


def _schedule_for(spec: ScheduleSpec) -> dict[str, Any]:
    if spec.every is not None:
        every = {"every": int(spec.every.total_seconds()), "period": IntervalSchedule.SECONDS}
        interval = IntervalSchedule.objects.filter(**every).order_by("id").first()
        return {"interval": interval or IntervalSchedule.objects.create(**every), "crontab": None}
    c = spec.crontab or {}
    when = {
        "minute": c["minute"],
        "hour": c["hour"],
        "day_of_week": c.get("day_of_week", "*"),
        "day_of_month": c.get("day_of_month", "*"),
        "month_of_year": c.get("month_of_year", "*"),
        "timezone": "UTC",
    }
    crontab = CrontabSchedule.objects.filter(**when).order_by("id").first()
    return {"interval": None, "crontab": crontab or CrontabSchedule.objects.create(**when)}


def _defaults(spec: ScheduleSpec) -> dict[str, Any]:
    return {
        "task": TASK,
        "kwargs": spec.kwargs,
        "args": "[]",
        "queue": QUEUE,
        "description": spec.description,
        "expire_seconds": spec.expire_seconds,
        "enabled": True,
        **_schedule_for(spec),
    }


def _matches(task: PeriodicTask, wanted: dict[str, Any]) -> bool:
    return all(getattr(task, name) == value for name, value in wanted.items())


def ensure_schedules(*, reset: bool = False) -> list[tuple[ScheduleSpec, Action]]:
    """Create the missing periodic tasks (or, with ``reset``, restore every default)."""
    outcome: list[tuple[ScheduleSpec, Action]] = []
    with transaction.atomic():
        for spec in SCHEDULES:
            wanted = _defaults(spec)
            task = PeriodicTask.objects.select_for_update().filter(name=spec.name).first()
            if task is None:
                PeriodicTask.objects.create(name=spec.name, **wanted)
                outcome.append((spec, "created"))
            elif _matches(task, wanted):
                outcome.append((spec, "unchanged"))
            elif reset:
                for name, value in wanted.items():
                    setattr(task, name, value)
                task.save()
                outcome.append((spec, "reset"))
            else:
                outcome.append((spec, "kept"))
    return outcome


def installed() -> dict[str, PeriodicTask | None]:
    """Each expected schedule's row (None when missing), by name."""
    rows = {t.name: t for t in PeriodicTask.objects.filter(name__in=[s.name for s in SCHEDULES])}
    return {spec.name: rows.get(spec.name) for spec in SCHEDULES}
