#!/usr/bin/env python
"""Console benchmark: how long each operations page takes to render with a year of data.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/spine .venv/bin/python bench/console.py \\
        [--weeks 52] [--rows 5000] [--tiers T1,T2,OTC] [--executions 100000] [--repeat 5]

Loads ``--weeks`` weeks of generated OTC files per tier through the real ETL services
(ingest → normalize → compute, as the pipelines call them), a year's worth of
executions with their events (bulk-inserted: a schedule's runs, full ETLs with their
three steps, failures, a few still queued or running) and dead letters for the
failures (through ``dlq.services.park``). Then it renders each console page with
Django's test client as a signed-in superuser and prints the median and slowest of
``--repeat`` renders per page, next to a trivial admin page (an empty changelist)
measured in the same run, so the figures read independent of the machine.

The database is ``DATABASE_URL`` with ``_console`` appended (or
``BENCH_DATABASE_URL``), created and migrated if missing. Data is loaded once: a
database that already holds the weeks asked for is measured as it is (``--reload``
empties it first). The local backend and an in-process cache are used (no Redis):
the pages read the ledger, not the broker.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FIRST_WEEK = date(2024, 12, 30)


def bench_database_url() -> str:
    explicit = os.environ.get("BENCH_DATABASE_URL")
    if explicit:
        return explicit
    parts = urlsplit(os.environ.get("DATABASE_URL", ""))
    if not parts.scheme.startswith("postgres"):
        sys.exit("bench/console.py needs PostgreSQL: set DATABASE_URL or BENCH_DATABASE_URL")
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "_console"))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weeks", type=int, default=52, help="weeks of OTC data per tier")
    parser.add_argument("--rows", type=int, default=5000, help="rows per weekly file")
    parser.add_argument("--tiers", default="T1,T2,OTC", help="comma-separated tiers")
    parser.add_argument("--executions", type=int, default=100_000, help="ledger rows to load")
    parser.add_argument("--dead-letters", type=int, default=1000, help="failures parked")
    parser.add_argument("--repeat", type=int, default=5, help="renders per page")
    parser.add_argument("--reload", action="store_true", help="empty and load again")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    return parser.parse_args()


# --- loading -------------------------------------------------------------------------------


def load_otc(weeks: int, rows: int, tiers: list[str]) -> float:
    from otc.sample.generator import generate_weeks
    from otc.services import compute_capture, ingest_file, normalize_capture

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as directory:
        for index, tier in enumerate(tiers):
            paths = generate_weeks(
                Path(directory) / tier,
                tier=tier,
                start_week=FIRST_WEEK,
                weeks=weeks,
                rows=rows,
                seed=11 + index,
                malformed_ratio=0.001,
                ats=False,
            )
            for offset, path in enumerate(paths):
                week = FIRST_WEEK + timedelta(weeks=offset)
                result = ingest_file(path, tier=tier, week=week, ats=False)
                normalize_capture(result.capture_id)
                compute_capture(result.capture_id)
                path.unlink()
                print(f"  {tier} {week}: capture {result.capture_id}", file=sys.stderr)
    return time.perf_counter() - started


def load_executions(count: int, weeks: int) -> float:
    from tests.support.ledger_history import fabricate_history

    started = time.perf_counter()
    fabricate_history(count, start=FIRST_WEEK, weeks=weeks)
    return time.perf_counter() - started


def park_failures(limit: int) -> float:
    from dlq.services import park
    from executions.models import Execution

    started = time.perf_counter()
    for execution in Execution.objects.filter(status="failed").order_by("-created_at")[:limit]:
        park(execution, failure_kind="error")
    return time.perf_counter() - started


def empty_database() -> None:
    from django.db import connection

    from bench._storage import otc_tables

    ledger = ("dlq_deadletter", "executions_executionevent", "executions_executionlock")
    with connection.cursor() as cursor:
        tables = ", ".join((*ledger, "executions_execution", *otc_tables(cursor)))
        cursor.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")


# --- measuring -----------------------------------------------------------------------------


def pages() -> list[tuple[str, str]]:
    """(label, URL) of every console page measured, the baseline first."""
    from django.urls import NoReverseMatch, reverse

    from executions.models import Execution, ExecutionEvent
    from otc.models import Capture

    with_steps = (
        ExecutionEvent.objects.filter(type="step_started").order_by("-id").values("execution_id")
    )[:1]
    etl = Execution.objects.filter(pk__in=with_steps).first()
    capture = Capture.objects.order_by("-week").first()
    found: list[tuple[str, str]] = [
        ("baseline: empty groups list", reverse("admin:auth_group_changelist")),
        ("admin index", reverse("admin:index")),
    ]
    for label, name in (
        ("operations overview", "admin-operations-overview"),
        ("dead-letter groups", "admin:dlq_deadletter_groups"),
    ):
        try:
            found.append((label, reverse(name)))
        except NoReverseMatch:
            print(f"  (no {label} page here: {name})", file=sys.stderr)
    executions = reverse("admin:executions_execution_changelist")
    found += [
        ("executions list", executions),
        ("executions: failed", executions + "?status__exact=failed"),
        ("executions: search params", executions + "?q=finra_T1"),
    ]
    if etl is not None:
        found.append(
            (
                "execution detail (ETL, steps)",
                reverse("admin:executions_execution_change", args=[etl.pk]),
            )
        )
    found.append(("dead letters list", reverse("admin:dlq_deadletter_changelist")))
    for model in (
        "capture",
        "qualityreport",
        "reject",
        "venuevolume",
        "symbolweeksummary",
        "venuemarketshare",
        "venue",
        "symbolrolling",
        "venuerolling",
    ):
        found.append((f"otc {model} list", reverse(f"admin:otc_{model}_changelist")))
    found.append(
        ("otc symbol search (prefix)", reverse("admin:otc_symbolweeksummary_changelist") + "?q=AA")
    )
    if capture is not None:
        found.append(("otc capture detail", reverse("admin:otc_capture_change", args=[capture.pk])))
    return found


def measure(repeat: int) -> list[dict[str, Any]]:
    from django.contrib.auth.models import User
    from django.test import Client

    user = User.objects.filter(username="bench").first() or User.objects.create_superuser(
        "bench", "bench@example.com", "bench-password-123"
    )
    client = Client()
    client.force_login(user)
    results = []
    for label, url in pages():
        response = client.get(url)  # warm-up: templates compiled, caches filled
        if response.status_code != 200:
            results.append({"page": label, "url": url, "status": response.status_code})
            continue
        timings = []
        for _ in range(repeat):
            started = time.perf_counter()
            client.get(url)
            timings.append((time.perf_counter() - started) * 1000)
        results.append(
            {
                "page": label,
                "url": url,
                "status": 200,
                "median_ms": round(statistics.median(timings), 1),
                "max_ms": round(max(timings), 1),
                "bytes": len(response.content),
            }
        )
    return results


def report(results: list[dict[str, Any]], counts: dict[str, int]) -> None:
    base = results[0].get("median_ms") or 1.0
    print("data: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    print(f"{'page':40} {'median ms':>10} {'max ms':>8} {'× base':>7} {'KB':>6}")
    for row in results:
        if row["status"] != 200:
            print(f"{row['page']:40} HTTP {row['status']}")
            continue
        ratio = row["median_ms"] / base
        print(
            f"{row['page']:40} {row['median_ms']:>10.1f} {row['max_ms']:>8.1f} "
            f"{ratio:>7.1f} {row['bytes'] / 1024:>6.0f}"
        )


def main() -> None:
    args = parse_args()
    from bench.ingest import ensure_database

    url = bench_database_url()
    ensure_database(url)
    os.environ["DATABASE_URL"] = url
    os.environ.pop("REDIS_URL", None)
    os.environ["EXECUTION_BACKEND"] = "local"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spine.settings")
    import django

    django.setup()
    from django.conf import settings

    # The test client's host; no setup_test_environment(): its template signals would
    # copy every context and inflate the figures.
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    from dlq.models import DeadLetter
    from executions.models import Execution, ExecutionEvent
    from otc.models import Capture, SymbolWeekSummary, VenueVolume

    tiers = [t.strip() for t in args.tiers.split(",") if t.strip()]
    if args.reload:
        empty_database()
    loaded: dict[str, float] = {}
    if Capture.objects.count() < args.weeks * len(tiers):
        empty_database()
        print(f"loading {args.weeks} week(s) × {len(tiers)} tier(s)…", file=sys.stderr)
        loaded["otc_s"] = load_otc(args.weeks, args.rows, tiers)
        loaded["executions_s"] = load_executions(args.executions, args.weeks)
        loaded["dead_letters_s"] = park_failures(args.dead_letters)
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    counts = {
        "captures": Capture.objects.count(),
        "venue volumes": VenueVolume.objects.count(),
        "symbol summaries": SymbolWeekSummary.objects.count(),
        "executions": Execution.objects.count(),
        "events": ExecutionEvent.objects.count(),
        "dead letters": DeadLetter.objects.count(),
    }
    results = measure(args.repeat)
    if args.json:
        print(json.dumps({"counts": counts, "load": loaded, "pages": results}, indent=2))
    else:
        if loaded:
            print("loaded in " + ", ".join(f"{k} {v:.0f}" for k, v in loaded.items()))
        report(results, counts)


if __name__ == "__main__":
    main()
