#!/usr/bin/env python
"""Compute of a loaded week, statement by statement: ``EXPLAIN (ANALYZE, BUFFERS)``, times, sizes.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/spine .venv/bin/python bench/_compute.py \\
        [--rows 1000000] [--repeat 3] [--plans]

Its database is ``<DATABASE_URL name>_compute``, kept between runs: the first run
generates a ``--rows`` week (``bench/ingest.py``'s file) and loads it through the
product's intake (the full ETL). Every run then times, on the same file and database,
the bare COPY and compute of the newest week again (``--weeks``: after that many
loaded, never vacuumed) (``compute_capture``, rolled back) as the
median of ``--repeat``, recomputes it once more with ``EXPLAIN (ANALYZE, BUFFERS)`` of
every statement on an OTC table (``bench/_indexes.py``'s wrapper) and prints each
statement's execution time and plan (``--plans``: whole), then each OTC table's bytes.
docs/otc.md ("Benchmarks", compute) records the figures.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MB = 1_000_000
_TIME = re.compile(r"Execution Time: ([\d.]+) ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the loaded week")
    parser.add_argument("--repeat", type=int, default=3, help="timed computes (median)")
    parser.add_argument("--plans", action="store_true", help="print every plan whole")
    parser.add_argument(
        "--weeks", type=int, default=1, help="consecutive weeks of --rows loaded (the newest timed)"
    )
    args = parser.parse_args()
    from bench import ingest

    base = ingest.bench_database_url().removesuffix("_bench")
    suffix = "" if args.weeks == 1 else f"_{args.weeks}w"
    url = ingest._named(base, f"{urlsplit(base).path.lstrip('/')}_compute{suffix}")
    ingest.ensure_database(url)
    scratch = Path(tempfile.gettempdir()) / f"spine-compute-{urlsplit(url).path.lstrip('/')}"
    scratch.mkdir(exist_ok=True)
    path = scratch / f"finra_{ingest.TIER.lower()}_{args.rows}.psv"
    if not path.exists():
        ingest.generate(path, rows=args.rows)
    os.environ.update(
        DATABASE_URL=url,
        EXECUTION_BACKEND="local",
        SPINE_INBOX_DIR=str(scratch / "inbox"),
        SPINE_ARCHIVE_DIR=str(scratch / "archive"),
    )
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    ingest._setup_django()
    from django.db import connection, transaction

    from bench._indexes import Explainer
    from bench._storage import otc_table_bytes
    from otc.models import Capture
    from otc.services import compute_capture

    capture = Capture.objects.current().filter(tier=ingest.TIER, week=ingest.WEEK).first()
    if capture is None:
        print(f"loading {args.weeks} x {args.rows:,} rows…", file=sys.stderr, flush=True)
        first = ingest.WEEK - timedelta(weeks=args.weeks - 1)
        for index in range(args.weeks - 1):
            earlier = scratch / f"earlier_{args.rows}.psv"
            ingest.generate(earlier, rows=args.rows)
            ingest._full_etl(earlier, first + timedelta(weeks=index))
        ingest._full_etl(path, ingest.WEEK)
        capture = Capture.objects.current().get(tier=ingest.TIER, week=ingest.WEEK)
    copies, computes = [], []
    for _ in range(args.repeat):
        copies.append(ingest.bare_copy(url, path))
        ingest.checkpoint(url)
        started = time.perf_counter()
        with transaction.atomic():
            compute_capture(capture.pk)
            transaction.set_rollback(True)
        computes.append(time.perf_counter() - started)
    copy, compute = statistics.median(copies), statistics.median(computes)
    print(
        f"{args.rows:,} rows: bare COPY {copy:.2f} s, compute {compute:.2f} s"
        f" ({compute / copy:.2f}x); runs COPY {[round(c, 2) for c in copies]},"
        f" compute {[round(c, 2) for c in computes]}"
    )
    explainer = Explainer()
    with transaction.atomic(), connection.execute_wrapper(explainer):
        compute_capture(capture.pk)
        transaction.set_rollback(True)
    for plan in explainer.plans:
        lines = plan["plan"]
        ms = next((float(m.group(1)) for line in lines if (m := _TIME.search(line))), 0.0)
        print(f"\n{ms:9.1f} ms  {plan['sql'][:150]}")
        for line in lines if args.plans else lines[:3]:
            print(f"             {line}")
    with connection.cursor() as cursor:
        tables = otc_table_bytes(cursor)
    print("\ntable bytes (heap + indexes + TOAST):")
    for name, table in sorted(tables.items(), key=lambda item: -item[1]["bytes"]):
        if table["bytes"] > 8192 * 4:
            print(
                f"  {name:28} {table['bytes'] / MB:8.1f} MB"
                f" (indexes {table['index_bytes'] / MB:.1f} MB)"
            )
    print(f"  file {path.stat().st_size / MB:.1f} MB")


if __name__ == "__main__":
    main()
