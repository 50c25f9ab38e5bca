#!/usr/bin/env python
"""Dispatch overhead: executions per second through the whole execution machinery
(Dispatcher → PostgreSQL → Celery on Redis → runner → ledger) next to bare Celery
``apply_async`` of an empty task, on one worker with 2 prefork processes.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/spine_bench \\
    REDIS_URL=redis://127.0.0.1:6379/1 .venv/bin/python bench/dispatch.py [--count 1000]

The database is migrated first and gets ``diag.noop`` executions written to it: point
it at a scratch database. "Submitted" is calls per second in this process; "completed"
is tasks per second from the first submission until the last one has finished.
The two are measured in alternating rounds (``--rounds``, default 3) so drift in the
machine's load falls on both alike; each round's ratio is printed and the median of
the rounds is the figure judged against the target.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spine.settings")
os.environ["EXECUTION_BACKEND"] = "celery"
os.environ["SPINE_DIAGNOSTIC_PIPELINES"] = "true"
os.environ.setdefault("LOG_LEVEL", "WARNING")

WARMUP = 20
TARGET = 0.30


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()
    if args.count < 1 or args.rounds < 1:
        sys.exit("--count and --rounds must be at least 1")
    if not os.environ.get("REDIS_URL") or not os.environ.get("DATABASE_URL", "").startswith(
        ("postgres://", "postgresql://")
    ):
        sys.exit("set DATABASE_URL (PostgreSQL, a scratch database) and REDIS_URL")

    import django

    django.setup()
    from django.core.management import call_command

    from tests.support.celery_worker import start_celery_worker

    call_command("migrate", verbosity=0)
    worker = start_celery_worker(
        os.environ["DATABASE_URL"],
        Path(tempfile.mkdtemp(prefix="spine-bench-")),
        env={"LOG_LEVEL": "WARNING"},
        loglevel="WARNING",
        extra_args=("--include", "bench.celery_tasks"),
    )
    try:
        load = os.getloadavg()[0]
        commit_ms = durable_commit_ms()
        bare_run, spine_run = bench_bare(args.timeout), bench_dispatch(args.timeout)
        bare_run(WARMUP)
        spine_run(WARMUP)
        rounds = []
        for _ in range(args.rounds):
            rounds.append((bare_run(args.count), spine_run(args.count)))
    finally:
        worker.stop()
    report(args.count, rounds)
    print(
        f"context: load average {load:.1f} on {os.cpu_count()} CPUs; one durable PostgreSQL "
        f"commit takes {commit_ms:.1f} ms here (a dispatched execution needs three)"
    )


def durable_commit_ms(samples: int = 50) -> float:
    """Median time of a one-row insert committed to disk, for reading the figures."""

    from django.db import connection

    timings = []
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS spine_bench_commit (x int)")
        for _ in range(samples):
            start = time.perf_counter()
            cursor.execute("INSERT INTO spine_bench_commit VALUES (1)")
            timings.append((time.perf_counter() - start) * 1000)
        cursor.execute("DROP TABLE spine_bench_commit")
    return statistics.median(timings)


Timing = tuple[float, float]  # seconds to submit all, seconds until all completed


def bench_bare(timeout: float) -> Callable[[int], Timing]:
    from bench.celery_tasks import COUNTER_KEY, counter, empty

    def run(n: int) -> tuple[float, float]:
        key = uuid.uuid4().hex
        start = time.perf_counter()
        for _ in range(n):
            empty.apply_async(args=[key], queue="default")
        submitted = time.perf_counter() - start
        wait(lambda: int(counter().get(f"{COUNTER_KEY}:{key}") or 0) >= n, timeout)
        completed = time.perf_counter() - start
        counter().delete(f"{COUNTER_KEY}:{key}")
        return submitted, completed

    return run


def bench_dispatch(timeout: float) -> Callable[[int], Timing]:
    from executions.dispatcher import dispatch
    from executions.models import Execution, ExecutionStatus
    from spine.time import utc_now

    def run(n: int) -> tuple[float, float]:
        request_id = f"bench-{uuid.uuid4().hex}"
        since = utc_now()
        start = time.perf_counter()
        for _ in range(n):
            dispatch("diag.noop", trigger_source="cli", request_id=request_id)
        submitted = time.perf_counter() - start
        # (pipeline, created_at) is indexed: polling stays cheap however big the table.
        recent = Execution.objects.filter(pipeline="diag.noop", created_at__gte=since)
        mine = recent.filter(request_id=request_id)
        wait(lambda: mine.filter(status=ExecutionStatus.SUCCEEDED).count() >= n, timeout)
        completed = time.perf_counter() - start
        failed = mine.exclude(status=ExecutionStatus.SUCCEEDED).count()
        if failed:
            sys.exit(f"{failed} executions did not succeed")
        return submitted, completed

    return run


def wait(done: object, timeout: float) -> None:
    deadline = time.perf_counter() + timeout
    while not done():  # type: ignore[operator]
        if time.perf_counter() > deadline:
            sys.exit(f"not finished within {timeout}s")
        time.sleep(0.05)


def report(count: int, rounds: list[tuple[Timing, Timing]]) -> None:
    print(f"{count} tasks, one worker, 2 prefork processes, Redis broker, PostgreSQL ledger")
    print(f"{'':40} {'submitted/s':>12} {'completed/s':>12}")
    for n, (bare, spine) in enumerate(rounds, 1):
        print(f"round {n}")
        print(f"  {'bare Celery apply_async (empty task)':38} {rates(count, bare)}")
        print(f"  {'Market Spine dispatch (diag.noop)':38} {rates(count, spine)}")
        print(f"  {'ratio (dispatch / bare)':38} {ratios(bare, spine)}")
    submitted = statistics.median(bare[0] / spine[0] for bare, spine in rounds)
    completed = statistics.median(bare[1] / spine[1] for bare, spine in rounds)
    verdict = "met" if completed >= TARGET else "MISSED"
    print(
        f"{'median ratio over ' + str(len(rounds)) + ' rounds':40} {submitted:12.0%} "
        f"{completed:12.0%}   target: completed >= {TARGET:.0%} ({verdict})"
    )


def rates(count: int, timing: Timing) -> str:
    return f"{count / timing[0]:12.0f} {count / timing[1]:12.0f}"


def ratios(bare: Timing, spine: Timing) -> str:
    return f"{bare[0] / spine[0]:12.0%} {bare[1] / spine[1]:12.0%}"


if __name__ == "__main__":
    main()
