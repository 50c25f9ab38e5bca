"""Benchmark: the full OTC ETL of one week on PostgreSQL against a bare COPY baseline.

For each size (100,000 and 1,000,000 rows by default) it generates a realistic NMS
Tier 1 week with ``otc.sample.generator`` and measures, in the same run:

* **baseline** — a bare psycopg 3 ``COPY`` of the same file's data rows into an
  unindexed table of eight text columns (server-side parsing only; the best any load
  of these bytes can do);
* **full ETL** — ``ingest_file`` (parse, checksum, raw rows by ``COPY``) →
  ``normalize_capture`` → ``compute_capture`` (summaries, shares, HHI, rolling,
  quality), in a fresh child process, timed inside it from the first byte read to the
  last analytics row committed (Django start-up and migrations excluded).

The ingest's Python CPU time (parsing, checksum, ``COPY`` rows) is shown too: where
it is close to the ingest's wall time the client is the bottleneck, otherwise the
server. Peak memory is the child process's maximum resident set size (``ru_maxrss`` from
``os.wait4``), so it includes the interpreter, Django and psycopg, not just the data
path. Each measurement is repeated (``--repeat``) and the median is reported, next to
the targets: ETL ≤ 4 × bare COPY, ≥ 100,000 rows/s, peak < 300 MB at 1,000,000 rows.

The benchmark needs its own PostgreSQL database: ``BENCH_DATABASE_URL``, or
``DATABASE_URL`` with ``_bench`` appended to the database name. It is created if
missing, migrated, and its OTC tables are emptied before every run::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/spine .venv/bin/python bench/ingest.py
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TIER = "T1"
WEEK = date(2025, 11, 3)
SEED = 2025
TARGET_RATIO = 4.0
TARGET_ROWS_PER_SECOND = 100_000
TARGET_PEAK_MB = 300
OTC_TABLES = (
    "otc_qualityreport",
    "otc_symbolrolling",
    "otc_venuerolling",
    "otc_symbolweeksummary",
    "otc_venuemarketshare",
    "otc_venuevolume",
    "otc_reject",
    "otc_issue",
    "otc_participant",
    "otc_venue",
    "otc_capture",
)


def bench_database_url() -> str:
    explicit = os.environ.get("BENCH_DATABASE_URL")
    if explicit:
        return explicit
    base = os.environ.get("DATABASE_URL", "")
    parts = urlsplit(base)
    if parts.scheme not in {"postgres", "postgresql"}:
        sys.exit("bench/ingest.py needs PostgreSQL: set DATABASE_URL or BENCH_DATABASE_URL")
    name = parts.path.lstrip("/") or "spine"
    return urlunsplit(parts._replace(path=f"/{name}_bench"))


def libpq_url(url: str) -> str:
    return "postgresql" + url[url.index(":") :]


def ensure_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(libpq_url(admin), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    child_env = {**os.environ, "DATABASE_URL": url}
    child_env.pop("REDIS_URL", None)
    subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "migrate", "--verbosity", "0", "--skip-checks"],
        env=child_env,
        check=True,
        cwd=ROOT,
    )


def empty_otc_tables(url: str) -> None:
    import psycopg

    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute(f"TRUNCATE {', '.join(OTC_TABLES)} RESTART IDENTITY CASCADE")
    checkpoint(url)


def checkpoint(url: str) -> None:
    """Start each measurement with the WAL flushed, so no run pays for the one before.
    Needs superuser (or pg_checkpoint); skipped without it."""
    import psycopg

    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        try:
            conn.execute("CHECKPOINT")
        except psycopg.errors.InsufficientPrivilege:
            pass


def bare_copy(url: str, path: Path) -> float:
    """Seconds to COPY the file's data rows into a fresh unindexed table, committed."""
    import psycopg

    with psycopg.connect(libpq_url(url)) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_bare_copy")
        conn.execute(
            "CREATE TABLE bench_bare_copy (tier text, symbol text, issue text, venue text,"
            " mpid text, volume text, trades text, updated text)"
        )
        conn.commit()
        checkpoint(url)
        started = time.perf_counter()
        with path.open("rb") as handle, conn.cursor() as cursor:
            handle.readline()  # the header
            with cursor.copy("COPY bench_bare_copy FROM STDIN (DELIMITER '|')") as copy:
                while chunk := handle.read(1 << 20):
                    copy.write(chunk)
        conn.commit()
        elapsed = time.perf_counter() - started
        conn.execute("DROP TABLE bench_bare_copy")
        conn.commit()
    return elapsed


def etl_in_child(url: str, path: Path) -> dict[str, Any]:
    """Run the ETL in a fresh process; return its timings and peak RSS."""
    env = {**os.environ, "DATABASE_URL": url, "EXECUTION_BACKEND": "local"}
    env.pop("REDIS_URL", None)
    child = subprocess.Popen(
        [sys.executable, __file__, "--child", str(path)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        sys.exit(f"ETL child failed with exit code {child.returncode}")
    result = json.loads(output)
    result["peak_rss_mb"] = usage.ru_maxrss / 1024  # Linux reports KiB
    return result


def child_main(path: Path) -> None:
    """The measured ETL: ingest → normalize → compute, timed per stage."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spine.settings")
    import django

    django.setup()
    from otc.services import compute_capture, ingest_file, normalize_capture

    started, cpu_started = time.perf_counter(), time.process_time()
    ingested = ingest_file(path, tier=TIER, week=WEEK, ats=False)
    after_ingest, ingest_cpu = time.perf_counter(), time.process_time() - cpu_started
    normalize_capture(ingested.capture_id)
    after_normalize = time.perf_counter()
    computed = compute_capture(ingested.capture_id)
    finished = time.perf_counter()
    json.dump(
        {
            "rows": ingested.rows,
            "rejects": ingested.rejects,
            "grade": computed.grade,
            "symbols": computed.counts["symbol_summaries"],
            "seconds": finished - started,
            "ingest": after_ingest - started,
            "normalize": after_normalize - after_ingest,
            "compute": finished - after_normalize,
            "ingest_client_cpu": ingest_cpu,
        },
        sys.stdout,
    )


def measure(url: str, rows: int, repeat: int, directory: Path) -> dict[str, Any]:
    from otc.sample.generator import generate_week

    path = directory / f"finra_{TIER.lower()}_{rows}.psv"
    generate_week(path, tier=TIER, week=WEEK, rows=rows, seed=SEED, ats=False)
    copies, runs = [], []
    for _ in range(repeat):
        copies.append(bare_copy(url, path))
        empty_otc_tables(url)
        runs.append(etl_in_child(url, path))
    etl = statistics.median(run["seconds"] for run in runs)
    copy = statistics.median(copies)
    return {
        "rows": rows,
        "file_mb": path.stat().st_size / 1e6,
        "copy": copy,
        "etl": etl,
        "ratio": etl / copy,
        "rows_per_second": rows / etl,
        "peak_rss_mb": max(run["peak_rss_mb"] for run in runs),
        "ingest": statistics.median(run["ingest"] for run in runs),
        "normalize": statistics.median(run["normalize"] for run in runs),
        "compute": statistics.median(run["compute"] for run in runs),
        "ingest_client_cpu": statistics.median(run["ingest_client_cpu"] for run in runs),
        "grade": runs[-1]["grade"],
        "symbols": runs[-1]["symbols"],
    }


def report(results: list[dict[str, Any]]) -> None:
    print()
    print(
        f"{'rows':>10} {'file':>7} {'bare COPY':>10} {'full ETL':>9} {'ratio':>6} "
        f"{'rows/s':>9} {'peak RSS':>9}   ingest / normalize / compute"
    )
    for r in results:
        print(
            f"{r['rows']:>10,} {r['file_mb']:>5.0f}MB {r['copy']:>9.2f}s {r['etl']:>8.2f}s "
            f"{r['ratio']:>5.1f}x {r['rows_per_second']:>9,.0f} {r['peak_rss_mb']:>7.0f}MB"
            f"   {r['ingest']:.2f}s / {r['normalize']:.2f}s / {r['compute']:.2f}s"
            f"  (ingest Python CPU {r['ingest_client_cpu']:.2f}s)"
        )
    largest = max(results, key=lambda r: r["rows"])
    print()
    print("targets (largest week):")
    checks = [
        (f"ETL <= {TARGET_RATIO:g}x bare COPY", largest["ratio"] <= TARGET_RATIO,
         f"{largest['ratio']:.1f}x"),
        (f">= {TARGET_ROWS_PER_SECOND:,} rows/s end to end",
         largest["rows_per_second"] >= TARGET_ROWS_PER_SECOND,
         f"{largest['rows_per_second']:,.0f} rows/s"),
        (f"peak memory < {TARGET_PEAK_MB} MB", largest["peak_rss_mb"] < TARGET_PEAK_MB,
         f"{largest['peak_rss_mb']:.0f} MB (child ru_maxrss)"),
    ]  # fmt: skip
    for label, ok, value in checks:
        print(f"  {'met ' if ok else 'MISS'}  {label}: {value}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3, help="runs per size (median)")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(args.child)
        return
    url = bench_database_url()
    print(f"database: {urlsplit(url).path.lstrip('/')}; tier {TIER}; repeat {args.repeat}")
    ensure_database(url)
    with tempfile.TemporaryDirectory(prefix="spine-bench-") as tmp:
        results = [measure(url, rows, args.repeat, Path(tmp)) for rows in args.rows]
    empty_otc_tables(url)
    report(results)


if __name__ == "__main__":
    main()
