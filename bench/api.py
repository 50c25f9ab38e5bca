#!/usr/bin/env python
"""API latency: the OTC symbol-week and venue-list endpoints next to an empty DRF view,
served by one gunicorn on PostgreSQL with a year of generated weeks loaded.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/spine_bench \\
    REDIS_URL=redis://127.0.0.1:6379/1 .venv/bin/python bench/api.py [--weeks 52 --rows 100000]

Point ``DATABASE_URL`` at a scratch database: it is migrated, its OTC tables are
emptied, and ``--weeks`` NMS Tier 1 weeks of ``--rows`` rows each are generated with
``otc.sample.generator`` and loaded through the OTC services (ingest → normalize → compute,
as ``otc.full_etl`` runs them); ``--skip-load`` reuses what an earlier run loaded.

Then gunicorn serves the application with ``bench.api_settings`` (the production
settings plus one empty view at ``/api/v1/bench/empty/``), ``DEBUG`` off, and a local
load generator (threads, one ``httpx`` client each, loopback only) sends a bounded
number of authenticated GETs to each endpoint, interleaved in rounds so drift hits
all alike. Rate limiting stays on (a budget too large to spend), so every request pays
its Redis round trip when ``REDIS_URL`` is set, as in production. Data requests walk
the loaded weeks, so they do not hit one cached page.

Reported per endpoint: requests/second, p50 and p99 latency (client side, including
the loopback connection), and the p50 ratio to the empty view; target ≤ 2.0.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spine.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")

TIER = "T1"
SEED = 2026
TARGET_RATIO = 2.0
# The endpoints the target is set for; the others are reported for context.
TARGET_ENDPOINTS = ("symbols of a week", "venues of a week")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weeks", type=int, default=52, help="Weeks to load (default 52).")
    parser.add_argument("--rows", type=int, default=100_000, help="Rows per week (100,000).")
    parser.add_argument("--skip-load", action="store_true", help="Reuse the loaded weeks.")
    parser.add_argument(
        "--requests", type=int, default=2000, help="Requests per endpoint and concurrency."
    )
    parser.add_argument(
        "--concurrency", default="1,4", help="Client threads, comma-separated runs (1,4)."
    )
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers (2).")
    parser.add_argument("--port", type=int, default=8791)
    parser.add_argument("--json", dest="json_out", type=Path, help="Also write results here.")
    return parser.parse_args()


# Loading -------------------------------------------------------------------------------


def load(weeks: int, rows: int) -> dict[str, Any]:
    """Generate and load ``weeks`` weeks through the services; return timings."""
    from django.apps import apps
    from django.db import connection

    from otc.sample.generator import SymbolUniverse, generate_week
    from otc.services import compute_capture, ingest_file, normalize_capture

    tables = [model._meta.db_table for model in apps.get_app_config("otc").get_models()]
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
    start = last_monday() - timedelta(weeks=weeks - 1)
    universe = SymbolUniverse.for_rows(TIER, rows, SEED, ats=False)
    generate_s = etl_s = 0.0
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="spine-bench-api-") as tmp:
        for n in range(weeks):
            week = start + timedelta(weeks=n)
            path = Path(tmp) / f"finra_t1_{week:%Y%m%d}.psv"
            t0 = time.perf_counter()
            generate_week(
                path,
                tier=TIER,
                week=week,
                rows=rows,
                seed=SEED,
                symbol_universe=universe,
                ats=False,
            )
            t1 = time.perf_counter()
            capture_id = ingest_file(path, tier=TIER, week=week, ats=False).capture_id
            normalize_capture(capture_id)
            compute_capture(capture_id)
            t2 = time.perf_counter()
            path.unlink()
            generate_s += t1 - t0
            etl_s += t2 - t1
            if (n + 1) % 10 == 0 or n + 1 == weeks:
                print(f"  loaded {n + 1}/{weeks} weeks ({time.perf_counter() - began:.0f} s)")
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")  # as autovacuum would soon: fresh plans, visibility
    return {
        "weeks": weeks,
        "rows_per_week": rows,
        "generate_seconds": round(generate_s, 1),
        "etl_seconds": round(etl_s, 1),
        "total_seconds": round(time.perf_counter() - began, 1),
    }


def last_monday() -> date:
    from otc.weeks import week_start
    from spine.time import utc_now

    return week_start(utc_now()) - timedelta(weeks=3)


def held() -> dict[str, Any]:
    """What the database holds: weeks, rows, a busy symbol and the summary row count."""
    from django.db.models import Count, Sum

    from otc import selectors

    weeks = sorted(selectors.available_weeks(tier=TIER))
    if not weeks:
        sys.exit("no T1 weeks loaded: run without --skip-load")
    summaries = selectors.symbol_summaries(tier=TIER)
    busiest = (
        summaries.values("symbol")
        .annotate(weeks=Count("id"), volume=Sum("total_volume"))
        .order_by("-weeks", "-volume")
        .first()
    )
    return {
        "weeks": [week.isoformat() for week in weeks],
        "symbol": busiest["symbol"],
        "symbol_rows": summaries.count(),
        "venue_volume_rows": selectors.venue_volumes(tier=TIER).count(),
    }


def token() -> str:
    from django.contrib.auth.models import User

    from spine.api.tokens import issue_token

    user, _ = User.objects.get_or_create(username="bench-api")
    key, _ = issue_token(user)
    return key.key


# Serving and load ----------------------------------------------------------------------


def start_gunicorn(port: int, workers: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.api_settings",
        "DEBUG": "false",
        "SECRET_KEY": "bench-api-" + os.urandom(24).hex(),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SPINE_SECURE_SSL_REDIRECT": "false",
        "SPINE_RATELIMIT_READ": "100000000/m",
        "LOG_LEVEL": "WARNING",
    }
    command = [
        str(Path(sys.executable).parent / "gunicorn"),
        "spine.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--chdir",
        str(ROOT),
        "--log-level",
        "warning",
    ]
    server = subprocess.Popen(command, env=env, cwd=ROOT)
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        if server.poll() is not None:
            sys.exit("gunicorn exited during start-up")
        time.sleep(0.2)
    server.terminate()
    sys.exit("gunicorn did not answer within 60 s")


def measure(
    base: str, key: str, paths: list[str], count: int, concurrency: int
) -> tuple[list[float], float]:
    """Send ``count`` GETs over ``paths`` (round robin) from ``concurrency`` threads;
    return the latencies (seconds) and the wall time."""
    import httpx

    latencies: list[float] = []
    lock = threading.Lock()
    failures: list[str] = []
    per_thread = [range(t, count, concurrency) for t in range(concurrency)]

    def work(indexes: range) -> None:
        mine = []
        with httpx.Client(
            base_url=base, headers={"Authorization": f"Token {key}"}, timeout=30
        ) as client:
            for i in indexes:
                path = paths[i % len(paths)]
                started = time.perf_counter()
                response = client.get(path)
                mine.append(time.perf_counter() - started)
                if response.status_code != 200:
                    failures.append(f"{path}: {response.status_code} {response.text[:200]}")
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=work, args=(indexes,)) for indexes in per_thread]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    if failures:
        sys.exit(f"{len(failures)} requests failed, e.g. {failures[0]}")
    return latencies, wall


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def endpoints(info: dict[str, Any]) -> dict[str, list[str]]:
    weeks = info["weeks"]
    return {
        "empty DRF view": ["/api/v1/bench/empty/"],
        "symbols of a week": [f"/api/v1/otc/symbols/?tier={TIER}&week={w}" for w in weeks],
        "venues of a week": [f"/api/v1/otc/venues/?tier={TIER}&week={w}" for w in weeks],
        "one symbol, all weeks": [f"/api/v1/otc/symbols/{info['symbol']}/weekly/?tier={TIER}"],
    }


def run(base: str, key: str, targets: dict[str, list[str]], count: int, concurrency: int) -> dict:
    rounds = 4
    samples: dict[str, list[float]] = {name: [] for name in targets}
    walls: dict[str, float] = dict.fromkeys(targets, 0.0)
    for paths in targets.values():  # warm-up: connections, caches
        measure(base, key, paths, min(100, count), concurrency)
    for _ in range(rounds):
        for name, paths in targets.items():
            latencies, wall = measure(base, key, paths, count // rounds, concurrency)
            samples[name].extend(latencies)
            walls[name] += wall
    empty_p50 = statistics.median(samples["empty DRF view"])
    results = {}
    for name in targets:
        p50 = statistics.median(samples[name])
        results[name] = {
            "requests": len(samples[name]),
            "rps": round(len(samples[name]) / walls[name], 1),
            "p50_ms": round(p50 * 1000, 2),
            "p99_ms": round(percentile(samples[name], 0.99) * 1000, 2),
            "p50_vs_empty": round(p50 / empty_p50, 2),
        }
    return results


def main() -> None:
    args = parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        sys.exit("set DATABASE_URL to a scratch PostgreSQL database (e.g. spine_bench)")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    report: dict[str, Any] = {"load": None}
    if not args.skip_load:
        print(f"loading {args.weeks} weeks × {args.rows:,} rows ({TIER}) ...")
        report["load"] = load(args.weeks, args.rows)
        print(f"  {report['load']}")
    info = held()
    key = token()
    from django.db import connections

    connections.close_all()
    print(
        f"held: {len(info['weeks'])} weeks, {info['venue_volume_rows']:,} venue rows, "
        f"{info['symbol_rows']:,} symbol-week rows; redis: {bool(os.environ.get('REDIS_URL'))}"
    )
    server = start_gunicorn(args.port, args.workers)
    base = f"http://127.0.0.1:{args.port}"
    report["runs"] = {}
    try:
        for concurrency in [int(c) for c in args.concurrency.split(",")]:
            results = run(base, key, endpoints(info), args.requests, concurrency)
            report["runs"][concurrency] = results
            print(
                f"\nconcurrency {concurrency}, gunicorn {args.workers} sync workers, "
                f"{args.requests} requests per endpoint"
            )
            print(f"{'endpoint':<24}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'p50/empty':>11}")
            for name, r in results.items():
                print(
                    f"{name:<24}{r['rps']:>9}{r['p50_ms']:>9}{r['p99_ms']:>9}"
                    f"{r['p50_vs_empty']:>11}"
                )
            machine = ", ".join(f"{value:.1f}" for value in os.getloadavg())
            print(f"machine load average (1, 5, 15 min) after the run: {machine}")
            worst = max(results[name]["p50_vs_empty"] for name in TARGET_ENDPOINTS)
            verdict = "met" if worst <= TARGET_RATIO else "MISSED"
            print(
                f"target p50 ≤ {TARGET_RATIO}× empty for {' and '.join(TARGET_ENDPOINTS)}: "
                f"{verdict} (worst {worst}×; other endpoints are context)"
            )
    finally:
        server.terminate()
        server.wait(timeout=30)
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
