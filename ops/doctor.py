"""``doctor``: is this installation able to do its job? One row per check.

Statuses: ``ok``, ``warn``, ``fail`` (exit non-zero) and ``skipped``; how it differs from
``/health/ready`` is in docs/operations.md.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from django.conf import settings

from dlq.models import DeadLetter
from executions.models import Execution, ExecutionStatus
from executions.selectors import pipeline_list, stale_queued_count
from ops.schedules import SCHEDULES, installed
from otc.health import check_archive
from spine import health
from spine.celery import app
from spine.time import format_iso, utc_now

Status = Literal["ok", "warn", "fail", "skipped"]
#: Seconds each Celery broadcast (ping, active queues) waits for replies.
WORKER_TIMEOUT = 2.0
DISK_FAIL_BYTES = 200 * 1024**2
DISK_WARN_BYTES = 1024**3
#: A pending execution older than this (beyond the sweeper's own delay) is a backlog.
STUCK_AFTER = timedelta(minutes=15)


@dataclass
class Check:
    name: str
    status: Status
    detail: str
    data: dict[str, Any] = field(default_factory=dict)
    ms: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _timed(name: str, fn: Callable[[], Check | list[Check]]) -> list[Check]:
    started = time.perf_counter()
    try:
        result = fn()
    except Exception as exc:  # a broken dependency is a finding, not a crash
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        result = Check(name, "fail", f"{type(exc).__name__}: {text}"[:300])
    checks = result if isinstance(result, list) else [result]
    elapsed = round((time.perf_counter() - started) * 1000, 1)
    for check in checks:
        check.ms = elapsed
    return checks


def _from_health(name: str, fn: health.CheckFn) -> Check:
    outcome = fn()
    return Check(name, outcome.status, outcome.detail, dict(outcome.data))


def uses_celery() -> bool:
    return settings.EXECUTION_BACKEND == "celery"


def check_workers() -> list[Check]:
    """Every lane needs at least one live worker consuming its queue."""
    lanes = list(settings.EXECUTION_LANES)
    if not uses_celery():
        detail = f"{settings.EXECUTION_BACKEND} backend: executions run in-process, no workers"
        return [Check(f"workers: {lane}", "skipped", detail) for lane in lanes]
    pongs = app.control.ping(timeout=WORKER_TIMEOUT) or []
    alive = {name for reply in pongs for name in reply}
    queues = app.control.inspect(timeout=WORKER_TIMEOUT).active_queues() or {}
    checks = []
    for lane in lanes:
        workers = sorted(w for w, qs in queues.items() if w in alive and _consumes(qs, lane))
        if workers:
            checks.append(
                Check(
                    f"workers: {lane}",
                    "ok",
                    f"{len(workers)} worker(s) answered: {', '.join(workers)}",
                    {"workers": workers},
                )
            )
        else:
            checks.append(
                Check(
                    f"workers: {lane}",
                    "fail",
                    f"no worker answered a ping on lane {lane!r} within {WORKER_TIMEOUT:g}s "
                    f"(start one: celery -A spine worker --queues {lane})",
                )
            )
    return checks


def _consumes(queues: list[dict[str, Any]], lane: str) -> bool:
    return any(q.get("name") == lane for q in queues or [])


def check_beat() -> Check:
    """The periodic tasks are installed, enabled, and (with Celery) being run."""
    rows = installed()
    missing = [name for name, row in rows.items() if row is None]
    disabled = [name for name, row in rows.items() if row is not None and not row.enabled]
    if missing:
        return Check(
            "beat schedule",
            "fail" if uses_celery() else "warn",
            f"{len(missing)} of {len(SCHEDULES)} schedules missing: run setup_schedules",
            {"missing": missing},
        )
    if not uses_celery():
        return Check(
            "beat schedule",
            "skipped",
            f"{len(SCHEDULES)} schedules installed; the embedded default runs no beat "
            "(use the cleanup / executions sweep commands)",
        )
    data: dict[str, Any] = {"disabled": disabled}
    sweeper = next(s for s in SCHEDULES if s.pipeline == "ops.sweep")
    last = rows[sweeper.name].last_run_at if rows[sweeper.name] else None
    if last is None:
        return Check(
            "beat schedule", "warn", "installed, but beat has not run the sweeper yet", data
        )
    data["sweeper_last_run_at"] = format_iso(last)
    assert sweeper.every is not None
    if utc_now() - last > sweeper.every * 3:
        return Check(
            "beat schedule",
            "warn",
            f"the sweeper last ran at {format_iso(last)}: is celery beat running?",
            data,
        )
    detail = f"{len(SCHEDULES)} schedules installed, sweeper ran at {format_iso(last)}"
    if disabled:
        return Check("beat schedule", "warn", f"{detail}; disabled: {', '.join(disabled)}", data)
    return Check("beat schedule", "ok", detail, data)


def check_disk(db: dict[str, Any] | None = None) -> Check:
    """Free space where the SQLite file lives (the embedded default)."""
    db = db or settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.sqlite3":
        return Check("disk", "skipped", f"{db['ENGINE'].rsplit('.', 1)[-1]}: the server's disk")
    path = Path(str(db["NAME"]))
    usage = shutil.disk_usage(path.parent if path.parent.exists() else Path.cwd())
    size = path.stat().st_size if path.exists() else 0
    data = {"free_bytes": usage.free, "database_bytes": size, "path": str(path)}
    detail = f"{usage.free / 1024**3:.1f} GiB free for {path} ({size / 1024**2:.1f} MiB)"
    if usage.free < DISK_FAIL_BYTES:
        return Check("disk", "fail", detail, data)
    if usage.free < DISK_WARN_BYTES:
        return Check("disk", "warn", detail, data)
    return Check("disk", "ok", detail, data)


def check_backlog() -> Check:
    """Executions that should have moved on: pending long after the sweeper's delay, or
    queued and due past the lost-message threshold (a broker that lost its messages)."""
    now = utc_now()
    cutoff = now - STUCK_AFTER
    stuck = Execution.objects.filter(status=ExecutionStatus.PENDING, created_at__lt=cutoff).count()
    queued = stale_queued_count(now)
    letters = DeadLetter.objects.open().count()
    data = {"stuck_pending": stuck, **queued, "open_dead_letters": letters}
    minutes = int(STUCK_AFTER.total_seconds() // 60)
    detail = (
        f"{stuck} pending for over {minutes} min, {queued['stale_queued']} queued and "
        f"waiting for a worker over {queued['stale_after_seconds']}s, "
        f"{letters} open dead letter(s)"
    )
    late = stuck or queued["stale_queued"]
    return Check("ledger", "warn" if late else "ok", detail, data)


def check_pipelines() -> Check:
    names = [p.name for p in pipeline_list()]
    status: Status = "ok" if names else "fail"
    return Check("pipelines", status, f"{len(names)} registered", {"pipelines": names})


def run_checks() -> list[Check]:
    """Every check, in order; the migration and ledger checks need the database."""
    checks = _timed("database", lambda: _from_health("database", health.check_database))
    database_ok = checks[0].status == "ok"
    if database_ok:
        checks += _timed("migrations", lambda: _from_health("migrations", health.check_migrations))
    else:
        checks.append(Check("migrations", "skipped", "database unreachable"))
    checks += _timed("redis", lambda: _from_health("redis", health.check_redis))
    redis_failed = checks[-1].status == "fail"
    if uses_celery() and redis_failed:
        checks += [
            Check(f"workers: {lane}", "fail", "the broker (Redis) is unreachable")
            for lane in settings.EXECUTION_LANES
        ]
    else:
        checks += _timed("workers", check_workers)
    if database_ok and checks[1].status == "ok":
        checks += _timed("beat schedule", check_beat)
        checks += _timed("ledger", check_backlog)
    else:
        reason = "database unreachable" if not database_ok else "migrations not applied"
        checks += [Check(name, "skipped", reason) for name in ("beat schedule", "ledger")]
    checks += _timed("disk", check_disk)
    checks += _timed("archive", lambda: _from_health("archive", check_archive))
    checks += _timed("pipelines", check_pipelines)
    return checks


def summary(checks: list[Check]) -> dict[str, Any]:
    failed = [c.name for c in checks if c.status == "fail"]
    return {
        "status": "fail" if failed else "ok",
        "failed": failed,
        "checked_at": format_iso(utc_now()),
        "backend": settings.EXECUTION_BACKEND,
        "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
        "checks": [c.as_dict() for c in checks],
    }
