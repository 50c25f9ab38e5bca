#!/usr/bin/env python
"""Benchmark: the full OTC ETL of a week against a bare COPY of the same file, and storage.

In one run, on the same generated NMS Tier 1 ATS file (``otc.sample.generator``), for
each ``--sizes`` (1,000,000 and a real-size 230,000 rows by default) it measures

* **bare COPY** — the file's data rows (the header skipped) streamed by psycopg 3 into
  an unindexed table of eight text columns, the server parsing them (the least any
  load of these bytes costs; ``bench/ingest_floor.py``'s baseline);
* **full ETL** — what ``manage.py otc ingest FILE --tier T1 --week W --ats`` runs:
  ``submit_local_file`` (the intake: the file into the inbox) → the Dispatcher → the
  ``otc.full_etl`` pipeline on the local backend (ingest → normalize → compute: every
  analytic, the quality gate, the capture made current), in a fresh child process,
  timed there from the intake's first byte to the run's return; its steps from the
  execution's ``step_started`` / ``step_finished`` events;
* **peak RSS** of that child (``ru_maxrss`` from ``os.wait4``: interpreter, Django and
  psycopg included);
* **storage** — database bytes added (``pg_total_relation_size`` of every ``otc_``
  table and its partitions, indexes and TOAST, before and after) plus the bytes the
  archive storage (``storages["archive"]``) gained, against the file's size.

Then (``--weeks K``, 52 by default, ``--rows`` each) it loads K consecutive weeks the
same way in one child process, a progress line per week, and reports the same
storage figures for them. Every figure is printed next to its target: ETL ≤ 4× bare
COPY, ≥ 150,000 rows/s end to end, peak RSS < 300 MB, storage ≤ 1.0× the file.

Nothing here names an OTC table: sizes come from the catalog and the ETL from the
product's own entry, so the script measures any table layout the migrations make.
Its database is ``BENCH_DATABASE_URL``, or ``DATABASE_URL`` with ``_bench`` appended;
every measurement starts from a fresh copy of it (``CREATE DATABASE … TEMPLATE`` of a
migrated ``<name>_pristine``, dropped at the end). The inbox and archive are temporary
directories (an archive configured by ``SPINE_ARCHIVE_URL`` is used instead, and the
objects the run added are deleted again)::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/spine .venv/bin/python bench/ingest.py \\
        [--sizes 1000000 230000] [--repeat 1] [--weeks 52] [--rows 20000] [--json]
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TIER = "T1"
ATS = True
WEEK = date(2025, 11, 3)
SEED = 2025
TARGET_RATIO = 4.0
TARGET_ROWS_PER_SECOND = 150_000
TARGET_PEAK_MB = 300
TARGET_STORAGE = 1.0
MB = 1_000_000


# --- the database ----------------------------------------------------------------------------


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


def _named(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def _admin(url: str) -> Any:
    import psycopg

    return psycopg.connect(libpq_url(_named(url, "postgres")), autocommit=True)


def migrate(url: str) -> None:
    env = {**os.environ, "DATABASE_URL": url}
    env.pop("REDIS_URL", None)
    subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "migrate", "--verbosity", "0", "--skip-checks"],
        env=env,
        check=True,
        cwd=ROOT,
    )


def ensure_database(url: str) -> None:
    """Create the database if missing and migrate it (``bench/console.py``,
    ``bench/ingest_floor.py`` and this script share it)."""
    name = urlsplit(url).path.lstrip("/")
    with _admin(url) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    migrate(url)


class FreshDatabases:
    """The bench database as just migrated, again for every measurement: a migrated
    ``<name>_pristine`` is made once and each reset copies it (a file copy, well
    under a second here), whatever tables and partitions the last run left."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.name = urlsplit(url).path.lstrip("/")
        self.pristine = f"{self.name}_pristine"

    def __enter__(self) -> FreshDatabases:
        with _admin(self.url) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.pristine}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{self.pristine}"')
        migrate(_named(self.url, self.pristine))
        return self

    def reset(self) -> None:
        with _admin(self.url) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{self.name}" TEMPLATE "{self.pristine}"')
        checkpoint(self.url)

    def __exit__(self, *exc: object) -> None:
        self.reset()  # left as ensure_database leaves it: migrated and empty
        with _admin(self.url) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.pristine}" WITH (FORCE)')


def checkpoint(url: str) -> None:
    """Start each measurement with the WAL flushed, so no run pays for the one before.
    Needs superuser (or pg_checkpoint); skipped without it."""
    import psycopg

    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        try:
            conn.execute("CHECKPOINT")
        except psycopg.errors.InsufficientPrivilege:
            pass


# --- the measurements ------------------------------------------------------------------------


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


def run_child(url: str, mode: str, target: Path, scratch: Path) -> dict[str, Any]:
    """Run ``--child MODE TARGET`` in a fresh process; its JSON result plus peak RSS.
    Its stderr (the progress lines) goes straight to ours."""
    env = {**os.environ, "DATABASE_URL": url, "EXECUTION_BACKEND": "local"}
    env.pop("REDIS_URL", None)
    env["SPINE_INBOX_DIR"] = str(scratch / "inbox")
    if not env.get("SPINE_ARCHIVE_URL"):
        env["SPINE_ARCHIVE_DIR"] = str(scratch / "archive")
    env.setdefault("LOG_LEVEL", "WARNING")
    child = subprocess.Popen(
        [sys.executable, __file__, "--child", mode, str(target)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"benchmark child ({mode}) failed with exit code {code}")
    result = json.loads(output.strip().splitlines()[-1])
    result["peak_rss_mb"] = usage.ru_maxrss * 1024 / MB  # Linux reports KiB
    return result


def generate(path: Path, *, rows: int) -> Path:
    """One generated week (ATS if the generator knows the difference)."""
    from otc.sample.generator import generate_week

    options: dict[str, Any] = {"tier": TIER, "week": WEEK, "rows": rows, "seed": SEED}
    if "ats" in inspect.signature(generate_week).parameters:
        options["ats"] = ATS
    generate_week(path, **options)
    return path


def measure_size(
    databases: FreshDatabases, rows: int, repeat: int, scratch: Path
) -> dict[str, Any]:
    path = generate(scratch / f"finra_{TIER.lower()}_{rows}.psv", rows=rows)
    copies, runs = [], []
    for attempt in range(repeat):
        databases.reset()
        copies.append(bare_copy(databases.url, path))
        databases.reset()
        print(f"  {rows:,} rows: run {attempt + 1} of {repeat}…", file=sys.stderr, flush=True)
        runs.append(run_child(databases.url, "week", path, scratch))
    etl = statistics.median(run["seconds"] for run in runs)
    copy = statistics.median(copies)
    last = runs[-1]
    file_bytes = path.stat().st_size
    path.unlink()
    return {
        "rows": rows,
        "file_bytes": file_bytes,
        "copy": copy,
        "etl": etl,
        "ratio": etl / copy,
        "rows_per_second": rows / etl,
        "peak_rss_mb": max(run["peak_rss_mb"] for run in runs),
        "steps": {
            step: statistics.median(run["steps"].get(step, 0.0) for run in runs)
            for step in last["steps"]
        },
        "db_bytes": last["db_bytes"],
        "archive_bytes": last["archive_bytes"],
        "tables": last["tables"],
        "grade": last["grade"],
    }


def measure_weeks(
    databases: FreshDatabases, weeks: int, rows: int, scratch: Path
) -> dict[str, Any]:
    from otc.sample.generator import generate_weeks

    directory = scratch / "weeks"
    options: dict[str, Any] = {"tier": TIER, "weeks": weeks, "rows": rows, "seed": SEED}
    if "ats" in inspect.signature(generate_weeks).parameters:
        options["ats"] = ATS
    print(f"  generating {weeks} weeks of {rows:,} rows…", file=sys.stderr, flush=True)
    generate_weeks(directory, start_week=WEEK - timedelta(weeks=weeks - 1), **options)
    databases.reset()
    result = run_child(databases.url, "weeks", directory, scratch)
    result["rows_per_week"] = rows
    return result


# --- the child: the product's own entry ------------------------------------------------------


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spine.settings")
    import django

    django.setup()


def _storage_now() -> tuple[dict[str, dict[str, int]], dict[str, int]]:
    from django.db import connection

    from bench._storage import archive_objects, otc_table_bytes
    from otc.archive import archive_storage

    with connection.cursor() as cursor:
        tables = otc_table_bytes(cursor)
    return tables, archive_objects(archive_storage())


def _full_etl(path: Path, week: date) -> dict[str, Any]:
    """``otc ingest PATH --tier T1 --week W --ats``, timed; the step times from its events."""
    from executions.models import ExecutionEvent, ExecutionStatus, TriggerSource
    from otc.services.intake import submit_local_file

    started = time.perf_counter()
    execution = submit_local_file(
        path, tier=TIER, week=week, ats=ATS, trigger_source=TriggerSource.CLI
    )
    seconds = time.perf_counter() - started
    execution.refresh_from_db()
    if execution.status != ExecutionStatus.SUCCEEDED:
        raise SystemExit(f"otc.full_etl {execution.status}: {execution.error}")
    steps: dict[str, float] = {}
    opened: dict[str, Any] = {}
    for event in ExecutionEvent.objects.filter(
        execution=execution, type__in=("step_started", "step_finished")
    ).order_by("timestamp", "pk"):
        step = event.data.get("step")
        if event.type == "step_started":
            opened[step] = event.timestamp
        elif step in opened:
            steps[step] = (event.timestamp - opened[step]).total_seconds()
    result = execution.result or {}
    return {"seconds": seconds, "steps": steps, "grade": result.get("grade", "")}


def _delete_added(before: dict[str, int], after: dict[str, int]) -> None:
    from otc.archive import archive_storage

    storage = archive_storage()
    for name in sorted(set(after) - set(before)):
        storage.delete(name)


def child_week(path: Path) -> dict[str, Any]:
    _setup_django()
    tables_before, objects_before = _storage_now()
    run = _full_etl(path, WEEK)
    tables_after, objects_after = _storage_now()
    _delete_added(objects_before, objects_after)
    return {
        **run,
        "db_bytes": _added(tables_before, tables_after),
        "archive_bytes": sum(objects_after.values()) - sum(objects_before.values()),
        "tables": {
            name: table["bytes"] - tables_before.get(name, {}).get("bytes", 0)
            for name, table in tables_after.items()
        },
    }


def child_weeks(directory: Path) -> dict[str, Any]:
    _setup_django()
    files = sorted(directory.glob("*.psv"))
    tables_before, objects_before = _storage_now()
    file_bytes = rows = 0
    seconds = 0.0
    started = time.perf_counter()
    for index, path in enumerate(files, 1):
        week = date(int(path.stem[-8:-4]), int(path.stem[-4:-2]), int(path.stem[-2:]))
        size, count = path.stat().st_size, _data_lines(path)
        run = _full_etl(path, week)
        path.unlink()
        file_bytes, rows, seconds = file_bytes + size, rows + count, seconds + run["seconds"]
        tables, objects = _storage_now()
        stored = (
            _added(tables_before, tables) + sum(objects.values()) - sum(objects_before.values())
        )
        print(
            f"  week {index:>2}/{len(files)} {week}: {count:,} rows in {run['seconds']:.2f} s"
            f" (grade {run['grade'] or '-'}); stored so far {stored / MB:,.1f} MB,"
            f" {stored / file_bytes:.2f}x the files",
            file=sys.stderr,
            flush=True,
        )
    tables_after, objects_after = _storage_now()
    _delete_added(objects_before, objects_after)
    return {
        "weeks": len(files),
        "rows": rows,
        "file_bytes": file_bytes,
        "etl_seconds": seconds,
        "wall_seconds": time.perf_counter() - started,
        "db_bytes": _added(tables_before, tables_after),
        "archive_bytes": sum(objects_after.values()) - sum(objects_before.values()),
        "tables": {
            name: table["bytes"] - tables_before.get(name, {}).get("bytes", 0)
            for name, table in tables_after.items()
        },
    }


def _added(before: dict[str, dict[str, int]], after: dict[str, dict[str, int]]) -> int:
    return sum(t["bytes"] for t in after.values()) - sum(t["bytes"] for t in before.values())


def _data_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for _ in handle) - 1


# --- the report ------------------------------------------------------------------------------


def _storage_line(label: str, db: int, archive: int, file_bytes: int, rows: int, weeks: int) -> str:
    total = db + archive
    return (
        f"  {label:<22} db {db / MB:>9,.1f} MB + archive {archive / MB:>7,.1f} MB"
        f" = {total / MB:>9,.1f} MB for {file_bytes / MB:,.1f} MB of files:"
        f" {total / file_bytes:.2f}x; {total / weeks / MB:,.1f} MB a week,"
        f" {total / rows:,.0f} bytes a row (db {db / rows:,.0f})"
    )


def report(sizes: list[dict[str, Any]], weeks: dict[str, Any] | None) -> None:
    print()
    print(
        f"{'rows':>10} {'file':>7} {'bare COPY':>10} {'full ETL':>9} {'ratio':>6} "
        f"{'rows/s':>9} {'peak RSS':>9}   steps"
    )
    for r in sizes:
        steps = " / ".join(f"{name} {value:.2f}s" for name, value in r["steps"].items())
        print(
            f"{r['rows']:>10,} {r['file_bytes'] / MB:>5.0f}MB {r['copy']:>9.2f}s "
            f"{r['etl']:>8.2f}s {r['ratio']:>5.1f}x {r['rows_per_second']:>9,.0f} "
            f"{r['peak_rss_mb']:>7.0f}MB   {steps}"
        )
    print()
    print("storage (database bytes added + archive bytes, against the file):")
    for r in sizes:
        print(_storage_line(f"{r['rows']:,}-row week", r["db_bytes"], r["archive_bytes"],
                            r["file_bytes"], r["rows"], 1))  # fmt: skip
    if weeks:
        print(_storage_line(f"{weeks['weeks']} weeks x {weeks['rows_per_week']:,}",
                            weeks["db_bytes"], weeks["archive_bytes"], weeks["file_bytes"],
                            weeks["rows"], weeks["weeks"]))  # fmt: skip
        print(
            f"  ({weeks['rows']:,} rows loaded in {weeks['etl_seconds']:.0f} s of ETL,"
            f" {weeks['rows'] / weeks['etl_seconds']:,.0f} rows/s, peak RSS"
            f" {weeks['peak_rss_mb']:.0f} MB)"
        )
    largest = weeks or (sizes[0] if sizes else None)
    if largest:
        tables = largest["tables"]
        print("  by table:", ", ".join(f"{n} {b / MB:,.1f} MB" for n, b in tables.items() if b))
    print()
    print("targets:")
    checks: list[tuple[str, bool, str]] = []
    for r in sizes:
        label = f"{r['rows']:,} rows"
        total = r["db_bytes"] + r["archive_bytes"]
        checks += [
            (f"{label}: full ETL <= {TARGET_RATIO:g}x bare COPY", r["ratio"] <= TARGET_RATIO,
             f"{r['ratio']:.1f}x ({r['etl']:.2f} s / {r['copy']:.2f} s)"),
            (f"{label}: >= {TARGET_ROWS_PER_SECOND:,} rows/s end to end",
             r["rows_per_second"] >= TARGET_ROWS_PER_SECOND, f"{r['rows_per_second']:,.0f}"),
            (f"{label}: peak RSS < {TARGET_PEAK_MB} MB", r["peak_rss_mb"] < TARGET_PEAK_MB,
             f"{r['peak_rss_mb']:.0f} MB"),
            (f"{label}: storage <= {TARGET_STORAGE:g}x the file",
             total <= TARGET_STORAGE * r["file_bytes"], f"{total / r['file_bytes']:.2f}x"),
        ]  # fmt: skip
    if weeks:
        total = weeks["db_bytes"] + weeks["archive_bytes"]
        checks.append(
            (f"{weeks['weeks']} weeks: storage <= {TARGET_STORAGE:g}x the files",
             total <= TARGET_STORAGE * weeks["file_bytes"], f"{total / weeks['file_bytes']:.2f}x")
        )  # fmt: skip
    width = max(len(label) for label, _, _ in checks)
    for label, ok, value in checks:
        print(f"  {'met ' if ok else 'MISS'}  {label:<{width}}  {value}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Needs PostgreSQL (DATABASE_URL or BENCH_DATABASE_URL); see the module docstring.",
    )
    parser.add_argument(
        "--sizes", type=int, nargs="*", default=[1_000_000, 230_000],
        help="rows of each single week timed against the bare COPY (none: skip)",
    )  # fmt: skip
    parser.add_argument("--repeat", type=int, default=1, help="runs per size (median)")
    parser.add_argument(
        "--weeks", type=int, default=52, help="consecutive weeks loaded for storage (0: skip)"
    )
    parser.add_argument("--rows", type=int, default=20_000, help="rows per week of --weeks")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is None and (
        args.repeat < 1 or args.weeks < 0 or args.rows < 1 or any(n < 1 for n in args.sizes)
    ):
        parser.error("--repeat, --rows and --sizes must be at least 1, --weeks at least 0")
    return args


def main() -> None:
    args = parse_args()
    if args.child:
        mode, target = args.child
        result = child_week(Path(target)) if mode == "week" else child_weeks(Path(target))
        print(json.dumps(result))
        return
    url = bench_database_url()
    print(f"database: {urlsplit(url).path.lstrip('/')}; tier {TIER} ATS; repeat {args.repeat}")
    sizes: list[dict[str, Any]] = []
    weeks: dict[str, Any] | None = None
    with tempfile.TemporaryDirectory(prefix="spine-bench-") as tmp, FreshDatabases(url) as dbs:
        for rows in args.sizes:
            sizes.append(measure_size(dbs, rows, args.repeat, Path(tmp)))
        if args.weeks:
            weeks = measure_weeks(dbs, args.weeks, args.rows, Path(tmp))
    report(sizes, weeks)
    if args.json:
        print(json.dumps({"sizes": sizes, "weeks": weeks}, indent=2))


if __name__ == "__main__":
    main()
