#!/usr/bin/env python
"""The raw archive: store a generated week, then serve pages of its lines (each page
verifies the whole object), on the configured archive storage.

    SPINE_ARCHIVE_DIR=/tmp/archive-bench .venv/bin/python bench/archive_reads.py [--rows 1000000]

With ``SPINE_ARCHIVE_URL`` (and ``SPINE_ARCHIVE_ENDPOINT_URL``, AWS_*) it measures S3.
An NMS Tier 1 week of ``--rows`` rows is generated with ``otc.sample.generator`` into a
temporary file; reported: the file's size, SHA-256 alone, ``store`` (and a second,
no-op ``store``), ``read_page`` at the start, middle and end (100 and 1,000 lines),
all lines through ``iter_lines``, and peak RSS. Figures are in docs/otc.md.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spine.settings")


def timed(label: str, fn: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    result = fn()
    print(f"{label:<42} {time.perf_counter() - started:7.2f} s")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()

    import django

    django.setup()
    from otc import archive
    from otc.sample.generator import generate_week

    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "week.psv"
        generate_week(path, tier="T1", week=date(2026, 11, 2), rows=args.rows, seed=args.seed)
        size = path.stat().st_size
        print(f"archive {archive.describe_storage()}; file {size:,} bytes, {args.rows:,} rows")

        def sha256_only() -> str:
            digest = hashlib.sha256()
            with path.open("rb") as handle:
                while chunk := handle.read(1 << 20):
                    digest.update(chunk)
            return digest.hexdigest()

        timed("SHA-256 of the file alone", sha256_only)
        with path.open("rb") as handle:
            stored = timed("store", lambda: archive.store(handle))
        print(f"  object {stored.stored_size:,} bytes ({stored.stored_size / size:.3f}x)")
        with path.open("rb") as handle:
            timed("store again (already archived)", lambda: archive.store(handle))
        lines = args.rows + 1
        middle = lines // 2
        for start, count in [(1, 100), (middle, 100), (lines - 99, 100), (lines - 999, 1000)]:
            timed(
                f"read_page(start={start:,}, count={count:,})",
                lambda s=start, c=count: archive.read_page(stored.checksum, s, c),
            )
        every = archive.iter_lines(stored.checksum)
        timed("iter_lines (every line)", lambda: sum(1 for _ in every))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MB")


if __name__ == "__main__":
    main()
