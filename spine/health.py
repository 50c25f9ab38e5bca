"""Liveness and readiness as JSON (``/health/live``, ``/health/ready``), for load balancers.

Apps add checks and details from ``AppConfig.ready()`` with :func:`register_check` and
:func:`register_detail_provider`; statuses and rules are in docs/api.md ("Health and metrics").
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from django.conf import settings
from django.db import connections
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, HttpResponse, JsonResponse

from spine.api.errors import method_not_allowed
from spine.time import format_iso, utc_now

logger = logging.getLogger("spine.health")

CheckStatus = Literal["ok", "fail", "skipped"]
OverallStatus = Literal["ok", "degraded", "down"]
REDIS_TIMEOUT_SECONDS = 1.0


@dataclass(frozen=True)
class CheckOutcome:
    """What a check function returns: its status and a short, secret-free detail."""

    status: CheckStatus = "ok"
    detail: str = ""
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: CheckStatus
    critical: bool
    latency_ms: float
    detail: str
    data: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "status": self.status,
            "critical": self.critical,
            "latency_ms": self.latency_ms,
            "detail": self.detail,
        }
        body.update(self.data)
        return body


CheckFn = Callable[[], CheckOutcome]
DetailProvider = Callable[[], dict[str, Any]]


@dataclass(frozen=True)
class _Check:
    name: str
    fn: CheckFn
    critical: bool


_CHECKS: dict[str, _Check] = {}
_DETAIL_PROVIDERS: dict[str, DetailProvider] = {}


def register_check(name: str, fn: CheckFn, *, critical: bool) -> CheckFn:
    """Add a readiness check; a failing critical check makes the service ``down``."""
    _CHECKS[name] = _Check(name, fn, critical)
    return fn


def register_detail_provider(name: str, fn: DetailProvider) -> DetailProvider:
    """Add informational context to ``/health/ready`` under ``details[name]``.

    The provider returns a small JSON-serialisable dict (no secrets). It is called on
    every readiness probe, so it must be cheap; if it raises, the error is reported in
    its place and the status is unaffected.
    """
    _DETAIL_PROVIDERS[name] = fn
    return fn


def unregister(name: str) -> None:
    """Remove a check or detail provider (tests)."""
    _CHECKS.pop(name, None)
    _DETAIL_PROVIDERS.pop(name, None)


def _database_alias() -> str:
    return getattr(settings, "SPINE_HEALTH_DATABASE", "default")


def check_database() -> CheckOutcome:
    """One round trip to the database (``SELECT 1``)."""
    connection = connections[_database_alias()]
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return CheckOutcome("ok", f"{connection.vendor} reachable")


def check_migrations() -> CheckOutcome:
    """Every migration on disk is applied (a deploy that skipped ``migrate`` is not ready)."""
    connection = connections[_database_alias()]
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if plan:
        pending = [f"{migration.app_label}.{migration.name}" for migration, _ in plan]
        return CheckOutcome(
            "fail", f"{len(pending)} migration(s) not applied", {"pending": pending}
        )
    return CheckOutcome("ok", "all migrations applied")


def check_redis() -> CheckOutcome:
    """PING the Redis at ``REDIS_URL``; skipped on the embedded default (no Redis)."""
    url = getattr(settings, "REDIS_URL", None)
    if not url:
        return CheckOutcome("skipped", "REDIS_URL not set (embedded default)")
    import redis

    client = redis.Redis.from_url(
        url,
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        socket_timeout=REDIS_TIMEOUT_SECONDS,
        retry_on_timeout=False,
    )
    try:
        client.ping()
    finally:
        client.close()
    return CheckOutcome("ok", "PONG")


register_check("database", check_database, critical=True)
register_check("migrations", check_migrations, critical=True)
register_check("redis", check_redis, critical=False)


def _describe(exc: BaseException) -> str:
    # The first line of the message: enough to diagnose, no connection strings.
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:300]


def run_check(check: _Check) -> CheckResult:
    started = time.perf_counter()
    try:
        outcome = check.fn()
    except Exception as exc:  # a failing dependency is a result, not a crash
        outcome = CheckOutcome("fail", _describe(exc))
    latency_ms = round((time.perf_counter() - started) * 1000, 2)
    return CheckResult(
        check.name, outcome.status, check.critical, latency_ms, outcome.detail, outcome.data
    )


def readiness() -> tuple[OverallStatus, dict[str, Any]]:
    """Run every check and provider; return the overall status and the JSON body."""
    results: list[CheckResult] = []
    database_failed = False
    for check in _CHECKS.values():
        if check.name == "migrations" and database_failed:
            results.append(
                CheckResult(check.name, "skipped", True, 0.0, "database unreachable", {})
            )
            continue
        result = run_check(check)
        results.append(result)
        if check.name == "database" and result.status == "fail":
            database_failed = True
    if any(r.status == "fail" and r.critical for r in results):
        overall: OverallStatus = "down"
    elif any(r.status == "fail" for r in results):
        overall = "degraded"
    else:
        overall = "ok"
    details: dict[str, Any] = {}
    for name, provider in _DETAIL_PROVIDERS.items():
        try:
            details[name] = provider()
        except Exception as exc:  # informational only: never fails the probe
            details[name] = {"error": _describe(exc)}
    body = {
        "status": overall,
        "checked_at": format_iso(utc_now()),
        "checks": {r.name: r.as_dict() for r in results},
        "details": details,
    }
    if overall != "ok":
        logger.warning(
            "readiness %s",
            overall,
            extra={"failed": [r.name for r in results if r.status == "fail"]},
        )
    return overall, body


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store"
    return response


def live(request: HttpRequest) -> HttpResponse:
    """Liveness: the process is up and serving; no dependency is touched."""
    if request.method not in ("GET", "HEAD"):
        return method_not_allowed(["GET", "HEAD"])
    return _no_store(JsonResponse({"status": "ok", "checked_at": format_iso(utc_now())}))


def ready(request: HttpRequest) -> HttpResponse:
    """Readiness: 200 for ok/degraded, 503 for down, with per-check detail."""
    if request.method not in ("GET", "HEAD"):
        return method_not_allowed(["GET", "HEAD"])
    overall, body = readiness()
    return _no_store(JsonResponse(body, status=503 if overall == "down" else 200))
