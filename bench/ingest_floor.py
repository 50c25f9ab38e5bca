#!/usr/bin/env python
"""The floor under the OTC ETL: the least server work its required outputs cost.

``bench/ingest.py`` times the real ETL against a bare ``COPY``. This script answers a
different question: however the ETL were written, what do the tables it must fill
cost on this PostgreSQL at the very least? In one rolled-back transaction, on one
generated week, it times

* **bare COPY** — the file's data rows into an unindexed table of eight text columns
  (``bench/ingest.py``'s baseline);
* **raw rows** — those rows typed (integers, a date) next to the line as received,
  into an unindexed table: the least any "raw rows stored as received, linked to
  their capture" can cost, with no parsing, no validation and no index;
* **normalized rows** — one row per symbol x MPID into an unindexed table shaped
  like ``VenueVolume``;
* **normalized key** — the unique (capture, symbol, MPID) index, built once after
  the load (a sorted build: cheaper than maintaining it row by row);
* **symbol summaries** — only the per-symbol aggregation (totals, venue count, top
  venue, HHI from rounded shares), computed and read but not written.

Their sum is a lower bound for the full ETL: it leaves out parsing and validation,
checksums, rejects, the raw rows' keys, venue shares, rolling windows, the quality
report, every index the API reads by, and each transaction's bookkeeping. Printed
next to the bare ``COPY`` it says how far below "4 x bare COPY" any implementation
of the required outputs can get on this machine.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/spine .venv/bin/python \\
        bench/ingest_floor.py [--rows 1000000] [--repeat 3]

It uses ``bench/ingest.py``'s database (``<name>_bench`` or ``BENCH_DATABASE_URL``)
and leaves nothing behind.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest import SEED, TIER, WEEK, bench_database_url, checkpoint, libpq_url  # noqa: E402

STEPS = ("bare COPY", "raw rows", "normalized rows", "normalized key", "symbol summaries")
FLOOR = STEPS[1:]

_SETUP = """
    CREATE TABLE floor_copy (tier text, symbol text, issue text, venue text,
                             mpid text, volume text, trades text, updated text)
"""
_RAW = """
    CREATE TABLE floor_raw AS
    SELECT 1::bigint AS capture_id, row_number() OVER () AS line_no,
           concat_ws('|', tier, symbol, issue, venue, mpid, volume, trades, updated) AS raw,
           tier AS tier_description, symbol, issue AS issue_name, venue AS venue_name, mpid,
           volume::bigint AS share_quantity, trades::bigint AS trade_count,
           updated::date AS last_update_date, NULL::text AS reject_reason
      FROM floor_copy
"""
_NORMALIZED = """
    CREATE TABLE floor_vv AS
    SELECT capture_id, line_no, DATE '2025-11-03' AS week, 'T1'::text AS tier, false AS ats,
           symbol COLLATE "C" AS symbol, issue_name, mpid COLLATE "C" AS mpid, venue_name,
           share_quantity AS share_volume, trade_count,
           CASE WHEN trade_count > 0 THEN round(share_quantity::numeric / trade_count, 4) END
               AS avg_trade_size
      FROM floor_raw
"""
_KEY = "CREATE UNIQUE INDEX floor_vv_key ON floor_vv (capture_id, symbol, mpid)"
_SUMMARIES = """
    SELECT count(*), max(issue_name), sum(total_volume), sum(total_trades),
           sum(venue_count), count(top_venue_mpid), sum(hhi_e8) FROM (
    SELECT symbol, MAX(issue_name) AS issue_name, MAX(total) AS total_volume,
           SUM(trade_count) AS total_trades, COUNT(*) AS venue_count,
           MIN(CASE WHEN share_volume = top THEN mpid END) AS top_venue_mpid,
           SUM(share_e4 * share_e4) AS hhi_e8
      FROM (SELECT symbol, issue_name, mpid, share_volume, trade_count, total, top,
                   CASE WHEN total > 0
                        THEN (2 * share_volume * 1000000 + total) / (2 * total) END AS share_e4
              FROM (SELECT symbol, issue_name, mpid, share_volume, trade_count,
                           SUM(share_volume) OVER by_symbol AS total,
                           MAX(share_volume) OVER by_symbol AS top
                      FROM floor_vv WHERE capture_id = 1
                    WINDOW by_symbol AS (PARTITION BY symbol)) totals) shares
     GROUP BY symbol) summaries
"""


def measure_once(url: str, path: Path) -> dict[str, float]:
    """Time each step in one transaction that is rolled back at the end (the tables are
    created in it, so nothing is left behind; the steps are WAL-logged as usual)."""
    import psycopg

    timings: dict[str, float] = {}
    checkpoint(url)
    with psycopg.connect(libpq_url(url)) as conn, conn.cursor() as cursor:
        cursor.execute("SET LOCAL work_mem = '256MB'")
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(_SETUP)
        started = time.perf_counter()
        with path.open("rb") as handle:
            handle.readline()  # the header
            with cursor.copy("COPY floor_copy FROM STDIN (DELIMITER '|')") as copy:
                while chunk := handle.read(1 << 20):
                    copy.write(chunk)
        timings["bare COPY"] = time.perf_counter() - started
        for step, sql in zip(FLOOR, (_RAW, _NORMALIZED, _KEY, _SUMMARIES), strict=True):
            if step == "symbol summaries":
                cursor.execute("ANALYZE floor_vv")  # untimed: the planner's best case
            started = time.perf_counter()
            cursor.execute(sql)
            timings[step] = time.perf_counter() - started
        conn.rollback()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs (median)")
    args = parser.parse_args()
    if args.rows < 1 or args.repeat < 1:
        sys.exit("--rows and --repeat must be at least 1")
    from bench.ingest import ensure_database
    from otc.sample.generator import generate_week

    url = bench_database_url()
    ensure_database(url)
    with tempfile.TemporaryDirectory(prefix="spine-floor-") as tmp:
        path = Path(tmp) / f"finra_{TIER.lower()}_{args.rows}.psv"
        generate_week(path, tier=TIER, week=WEEK, rows=args.rows, seed=SEED, ats=False)
        runs = [measure_once(url, path) for _ in range(args.repeat)]
    median = {step: statistics.median(run[step] for run in runs) for step in STEPS}
    copy = median["bare COPY"]
    print(f"{args.rows:,} rows, median of {args.repeat}; multiples of the bare COPY")
    for step in STEPS:
        print(f"  {step:<18} {median[step]:7.2f}s  {median[step] / copy:5.1f}x")
    floor = sum(median[step] for step in FLOOR)
    print(f"  {'floor (sum)':<18} {floor:7.2f}s  {floor / copy:5.1f}x   (target for the ETL: 4.0x)")
    print(
        "  not counted: parsing and validation, checksums, rejects, the raw rows' keys, "
        "venue shares, rolling windows, quality, the API's indexes, commits"
    )


if __name__ == "__main__":
    main()
