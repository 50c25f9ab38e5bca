#!/usr/bin/env python
"""Fault benchmark: does every execution finish exactly once through the faults a
production stack meets, without a person, and how long does recovery take?

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/spine REDIS_URL=redis://127.0.0.1:6379/1 \\
    .venv/bin/python bench/faults.py [--kills 10] [--trials 5] [--rows 1000000] [--outage 30]

Each scenario is repeated and judged on the ledger and the data:

* **kill** — a worker is SIGKILLed at a random moment of a ``--rows`` ``otc.full_etl``
  (``--kills`` times), then a new worker starts;
* **redis-outage** — Redis is stopped for ``--outage`` seconds while a worker runs a
  ``diag.write`` spanning the outage and holds a delayed one due in the middle of it;
  it comes back with its data (append-only file); a worker that died meanwhile is
  started again, as a restart policy would;
* **redis-empty** — ``--queued`` executions wait in Redis for a stopped worker; Redis
  is killed and started again empty, then a worker starts;
* **pause** — a worker running a ``--rows`` ``otc.full_etl`` is SIGSTOPped at a random
  moment past the reaper window; another worker (started beforehand on another queue,
  given the ETL's lane only then) takes the execution over; the first is SIGCONTed
  once the second has claimed it (or after ``--pause-hold`` seconds).

Beat's part (``ops.reap``, ``ops.sweep``) is played by this process, which reaps and
sweeps every second. Per scenario it prints executions submitted, finished exactly
once, lost (not finished within ``--recover-timeout``), run twice (two results, or
data written twice), needing a person (failed with an open dead letter) and the time
from the fault (for Redis: from its return) to the last of them finished. Timings are
short: heartbeat 1 s, reaper after ``--reap-after`` seconds, a queued execution
presumed lost after ``--lost-after`` seconds.

Everything is on loopback. The kill and pause scenarios use ``REDIS_URL``; the Redis
scenarios start their own ``redis-server`` on a free port. The database is
``DATABASE_URL`` with ``_faults`` appended to its name (or ``BENCH_DATABASE_URL``),
created if missing, migrated, and its OTC tables emptied.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SCENARIOS = ("kill", "redis-outage", "redis-empty", "pause")
TITLES = {
    "kill": "worker SIGKILL in full ETL",
    "redis-outage": "Redis stopped, running+delayed",
    "redis-empty": "Redis restarted empty, queued",
    "pause": "worker paused past reaper",
}
TIER = "T1"
SEED = 2026
#: Each scenario uses its own weeks, one per trial.
FIRST_WEEK = {"kill": date(2020, 1, 6), "pause": date(2022, 1, 3)}
RESULT = "scenario result: "
#: How a run that lost its claim ends once it carries on.
ENDINGS = ("fenced", "handler_stopped", "late_result")
TARGET = "0 lost, 0 run twice, 0 needing a person (below the requeue cap)"


@dataclass
class Tally:
    """One scenario's figures."""

    scenario: str
    submitted: int = 0
    once: int = 0
    lost: int = 0
    twice: int = 0
    person: int = 0
    other: int = 0
    recover_seconds: list[float] = field(default_factory=list)
    notes: dict[str, int] = field(default_factory=dict)

    def note(self, key: str) -> None:
        self.notes[key] = self.notes.get(key, 0) + 1


# --- the parent: database, one child process per scenario, the table -----------------------


def bench_database_url() -> str:
    explicit = os.environ.get("BENCH_DATABASE_URL")
    if explicit:
        return explicit
    parts = urlsplit(os.environ.get("DATABASE_URL", ""))
    if parts.scheme not in {"postgres", "postgresql"}:
        sys.exit("bench/faults.py needs PostgreSQL: set DATABASE_URL or BENCH_DATABASE_URL")
    name = parts.path.lstrip("/") or "spine"
    return urlunsplit(parts._replace(path=f"/{name}_faults"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenarios", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    parser.add_argument("--kills", type=int, default=10, help="trials of the kill scenario")
    parser.add_argument("--trials", type=int, default=5, help="trials of the other scenarios")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the ETL's file")
    parser.add_argument("--outage", type=float, default=30, help="seconds Redis is down")
    parser.add_argument("--queued", type=int, default=10, help="executions queued per trial")
    parser.add_argument("--reap-after", type=int, default=5, help="SPINE_REAP_AFTER_SECONDS")
    parser.add_argument("--lost-after", type=int, default=10, help="SPINE_SWEEP_LOST_AFTER_SECONDS")
    parser.add_argument("--pause-hold", type=float, default=30)
    parser.add_argument("--recover-timeout", type=float, default=300)
    parser.add_argument("--seed", type=int, default=None, help="random moments (default: any)")
    parser.add_argument("--child", choices=SCENARIOS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if min(args.kills, args.trials, args.rows, args.queued) < 1 or args.outage <= 0:
        sys.exit("--kills, --trials, --rows, --queued and --outage must be positive")
    if args.reap_after < 2:
        sys.exit("--reap-after must be at least 2 (seconds)")
    if args.child:
        child_main(args)
        return
    if not os.environ.get("REDIS_URL"):
        sys.exit("set REDIS_URL (the kill and pause scenarios use it)")
    if {"redis-outage", "redis-empty"} & set(args.scenarios) and not shutil.which("redis-server"):
        sys.exit("the Redis scenarios need redis-server on PATH")
    from bench.ingest import empty_otc_tables, ensure_database

    url = bench_database_url()
    ensure_database(url)
    empty_otc_tables(url)
    tallies = []
    started = time.monotonic()
    for scenario in args.scenarios:
        print(f"--- {TITLES[scenario]} ---", flush=True)
        tallies.append(run_child(scenario, url))
    report(tallies, args, time.monotonic() - started)


def run_child(scenario: str, url: str) -> Tally:
    command = [sys.executable, __file__, *sys.argv[1:], "--child", scenario]
    env = {**os.environ, "DATABASE_URL": url}
    process = subprocess.run(  # noqa: S603 - our own interpreter and script
        command, env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True, check=False
    )
    lines = [line for line in process.stdout.splitlines() if line.startswith(RESULT)]
    if process.returncode != 0 or not lines:
        sys.exit(f"scenario {scenario} failed (exit {process.returncode}):\n{process.stdout}")
    return Tally(**json.loads(lines[-1].removeprefix(RESULT)))


def report(tallies: list[Tally], args: argparse.Namespace, elapsed: float) -> None:
    print()
    print(
        f"Fault benchmark: {args.rows:,}-row full ETL, Redis down {args.outage:g} s, "
        f"reaper after {args.reap_after} s, heartbeat 1 s ({elapsed / 60:.1f} min)"
    )
    header = (
        f"{'scenario':32} {'submitted':>9} {'once':>5} {'lost':>5} {'twice':>6} "
        f"{'person':>7} {'other':>6}  recover s (median / max)"
    )
    print(header)
    print("-" * len(header))
    for t in tallies:
        times = t.recover_seconds
        recover = f"{statistics.median(times):.1f} / {max(times):.1f}" if times else "-"
        print(
            f"{TITLES[t.scenario]:32} {t.submitted:>9} {t.once:>5} {t.lost:>5} {t.twice:>6} "
            f"{t.person:>7} {t.other:>6}  {recover}"
        )
    for t in tallies:
        if t.notes:
            notes = ", ".join(f"{k}: {v}" for k, v in sorted(t.notes.items()))
            print(f"  {TITLES[t.scenario]}: {notes}")
    print(f"target: {TARGET}")
    ok = all(t.lost == t.twice == t.person == t.other == 0 for t in tallies)
    print("verdict:", "met" if ok else "NOT met")


# --- the child: one scenario's trials ---------------------------------------------------------


class RedisServer:
    """A redis-server of our own on a free loopback port; stop/start/kill it."""

    def __init__(self, directory: Path, *, persistent: bool) -> None:
        self.directory = directory
        self.persistent = persistent
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        persistence = (
            ["--appendonly", "yes", "--appendfsync", "always"]
            if self.persistent
            else ["--appendonly", "no", "--save", ""]
        )
        command = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port)]
        command += ["--dir", str(self.directory), *persistence]
        log = (self.directory / "redis.log").open("ab")
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        """SIGTERM: Redis writes its append-only file and exits."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        self._end(signal.SIGKILL)

    def _end(self, sig: int) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=30)


def child_main(args: argparse.Namespace) -> None:
    scenario = args.child
    work = Path(tempfile.mkdtemp(prefix=f"spine-faults-{scenario}-"))
    redis = None
    if scenario in ("redis-outage", "redis-empty"):
        redis = RedisServer(work, persistent=scenario == "redis-outage")
        redis.start()
        os.environ["REDIS_URL"] = redis.url
    timings = {
        "SPINE_HEARTBEAT_SECONDS": "1",
        "SPINE_REAP_AFTER_SECONDS": str(args.reap_after),
        "SPINE_SWEEP_AFTER_SECONDS": "2",
        "SPINE_SWEEP_LOST_AFTER_SECONDS": str(args.lost_after),
        "SPINE_LOCK_RETRY_SECONDS": "1",
        "SPINE_INBOX_DIR": str(work),
        "SPINE_TIME_LIMIT_GRACE_SECONDS": "5",
        "LOG_LEVEL": "WARNING",
    }
    os.environ.update(timings)
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "spine.settings",
            "EXECUTION_BACKEND": "celery",
            "SPINE_DIAGNOSTIC_PIPELINES": "true",
        }
    )
    import django

    django.setup()
    bench = Bench(args, work, timings, redis)
    try:
        with Recovery():
            tally = getattr(bench, scenario.replace("-", "_"))()
    finally:
        bench.close()
        if redis:
            redis.kill()
        shutil.rmtree(work, ignore_errors=True)
    print(RESULT + json.dumps(asdict(tally)), flush=True)


class Recovery(threading.Thread):
    """Beat's part: reap and sweep every second while the scenario runs."""

    def __init__(self) -> None:
        super().__init__(name="recovery", daemon=True)
        self.done = threading.Event()

    def __enter__(self) -> Recovery:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.join(timeout=30)

    def run(self) -> None:
        from django.db import connections

        from executions.recovery import reap_stale_executions, sweep_pending_executions

        while not self.done.wait(1.0):
            try:
                reap_stale_executions()
                sweep_pending_executions()
            except Exception as exc:  # a broker or database blip: try again next second
                log(f"recovery pass failed: {type(exc).__name__}: {exc}")
                connections.close_all()
        connections.close_all()


def reset_broker_connections() -> None:
    """Drop this process's pooled broker connections (Redis went away under them)."""
    from kombu import pools

    from spine.celery import app

    pools.reset()  # closes every pool and forgets it; the next use builds a new one
    app._pool = None
    app.amqp._producer_pool = None


def log(message: str) -> None:
    print(f"  {time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


class Bench:
    """The scenarios, with the workers and files they need."""

    def __init__(
        self,
        args: argparse.Namespace,
        work: Path,
        timings: dict[str, str],
        redis: RedisServer | None,
    ) -> None:
        from django.conf import settings

        from tests.support.celery_worker import database_url

        self.args = args
        self.work = work
        self.timings = timings
        self.redis = redis
        self.db_url = database_url(settings.DATABASES["default"])
        self.rng = random.Random(args.seed)
        self.workers: list[Any] = []
        self._file: Path | None = None

    # --- helpers -------------------------------------------------------------------

    def worker(self, queues: tuple[str, ...] | None = None) -> Any:
        from tests.support.celery_worker import QUEUES, start_celery_worker

        options: dict[str, Any] = {"env": self.timings, "loglevel": "WARNING"}
        options.update(queues=queues or QUEUES, ready_timeout=120)
        try:
            worker = start_celery_worker(self.db_url, self.work, **options)
        except Exception as exc:  # the ping found this process's broker connection broken
            log(f"starting a worker failed ({type(exc).__name__}); again on a fresh connection")
            reset_broker_connections()
            worker = start_celery_worker(self.db_url, self.work, **options)
        self.workers.append(worker)
        return worker

    def close(self) -> None:
        for worker in self.workers:
            worker.kill()  # SIGKILL ends a paused worker too

    def etl_file(self) -> Path:
        if self._file is None:
            from otc.sample.generator import generate_week

            self._file = self.work / "week.psv"
            log(f"generating a {self.args.rows:,}-row week")
            generate_week(
                self._file,
                tier=TIER,
                week=FIRST_WEEK["kill"],
                rows=self.args.rows,
                seed=SEED,
                ats=False,
            )
        return self._file

    def dispatch_etl(self, week: date) -> Any:
        from executions.dispatcher import dispatch

        params = {
            "path": self.etl_file().name,
            "tier": TIER,
            "week": week.isoformat(),
            "ats": False,
        }
        return dispatch("otc.full_etl", params, trigger_source="cli")

    def wait(self, predicate: Any, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.1)
        return bool(predicate())

    def finished(self, *executions: Any) -> bool:
        from executions.models import TERMINAL_STATUSES, Execution

        pks = [e.pk for e in executions]
        done = Execution.objects.filter(pk__in=pks, status__in=TERMINAL_STATUSES).count()
        return done == len(pks)

    def step_now(self, execution: Any) -> str:
        last = execution.events.filter(type__in=["step_started", "step_finished"]).last()
        if last is None:
            return "before ingest"
        return f"{'in' if last.type == 'step_started' else 'after'} {last.data.get('step')}"

    def calibrate(self, scenario: str) -> float:
        """One undisturbed ETL: how long a run takes, to pick random moments in it."""
        worker = self.worker()
        execution = self.dispatch_etl(FIRST_WEEK[scenario] - timedelta(weeks=1))
        if not self.wait(lambda: self.finished(execution), self.args.recover_timeout):
            sys.exit("the calibration ETL did not finish")
        execution.refresh_from_db()
        if execution.status != "succeeded":
            sys.exit(f"the calibration ETL {execution.status}: {execution.error}")
        worker.stop()
        log(f"an undisturbed ETL takes {execution.duration_seconds:.1f} s")
        return float(execution.duration_seconds or 1.0)

    def judge(self, tally: Tally, execution: Any, check: Any) -> None:
        from dlq.models import DeadLetter
        from executions.models import Execution

        execution = Execution.objects.get(pk=execution.pk)
        tally.submitted += 1
        types = list(execution.events.values_list("type", flat=True))
        late = execution.events.filter(type="late_result", data__outcome="succeeded").exists()
        if execution.status == "succeeded":
            if types.count("succeeded") == 1 and not late and check(execution):
                tally.once += 1
            else:
                tally.twice += 1
        elif execution.status in ("failed", "timed_out", "cancelled"):
            if DeadLetter.objects.filter(execution=execution, resolved_at__isnull=True).exists():
                tally.person += 1
            else:
                tally.other += 1
            tally.note(f"{execution.status}: {execution.error.split(':')[0]}")
        else:
            tally.lost += 1
            tally.note(f"left {execution.status}")
        for kind in ENDINGS:
            if kind in types:
                tally.note(f"stale run {kind}")

    def etl_once(self, execution: Any) -> bool:
        """One current capture for the week, its rows normalized once and computed."""
        from otc.models import Capture, VenueVolume

        week = date.fromisoformat(execution.params["week"])
        current = Capture.objects.filter(
            tier=TIER, week=week, ats=False, superseded_at__isnull=True
        ).exclude(checksum="")
        if current.count() != 1:
            return False
        capture = current.get()
        normalized = VenueVolume.objects.filter(capture=capture).count()
        return (
            normalized == capture.row_count - capture.reject_count
            and capture.computed_at is not None
            and Capture.objects.filter(tier=TIER, week=week, ats=False).count() == 1
        )

    def written_once(self, execution: Any) -> bool:
        """``diag.write``'s rows: all steps once, all from one run."""
        written = execution.events.filter(type="written")
        expected = execution.params["rows"] * execution.params["steps"]
        return (
            written.count() == expected
            and len(set(written.values_list("data__run", flat=True))) == 1
        )

    # --- scenarios -----------------------------------------------------------------

    def kill(self) -> Tally:
        tally = Tally("kill")
        duration = self.calibrate("kill")
        worker = self.worker()
        for trial in range(self.args.kills):
            execution = self.dispatch_etl(FIRST_WEEK["kill"] + timedelta(weeks=trial))
            self.wait(lambda e=execution: e.events.filter(type="started").exists(), 60)
            time.sleep(self.rng.uniform(0, duration))
            step = self.step_now(execution)
            worker.kill()
            killed = time.monotonic()
            worker = self.worker()
            done = self.wait(lambda e=execution: self.finished(e), self.args.recover_timeout)
            if done:
                tally.recover_seconds.append(time.monotonic() - killed)
            self.judge(tally, execution, self.etl_once)
            tally.note(f"killed {step}")
            execution.refresh_from_db()
            log(f"kill {trial + 1}: {step}, {execution.status}")
        return tally

    def pause(self) -> Tally:
        tally = Tally("pause")
        duration = self.calibrate("pause")
        from spine.celery import app

        for trial in range(self.args.trials):
            first = self.worker()
            # Ready beforehand, but taking the ETL's lane only once the first is paused.
            second = self.worker(queues=("maintenance",))
            execution = self.dispatch_etl(FIRST_WEEK["pause"] + timedelta(weeks=trial))
            self.wait(lambda e=execution: e.events.filter(type="started").exists(), 60)
            time.sleep(self.rng.uniform(0, duration * 0.9))
            step = self.step_now(execution)
            first.pause()
            paused = time.monotonic()
            app.control.add_consumer(execution.lane, destination=[second.hostname], reply=True)
            self.wait(
                lambda e=execution: e.events.filter(type="started").count() > 1 or self.finished(e),
                self.args.recover_timeout,
            )
            self.wait(lambda e=execution: self.finished(e), self.args.pause_hold)
            first.resume()
            done = self.wait(lambda e=execution: self.finished(e), self.args.recover_timeout)
            if done:
                tally.recover_seconds.append(time.monotonic() - paused)
            # A reaped run ends on its own once resumed (fenced, stopped or late): wait
            # for that before judging.
            if execution.events.filter(type__in=["requeued", "failed", "timed_out"]).exists():
                ended = self.wait(
                    lambda e=execution: e.events.filter(type__in=ENDINGS).exists(), 60
                )
                if not ended:
                    tally.note("resumed run left no ending")
            self.judge(tally, execution, self.etl_once)
            tally.note(f"paused {step}")
            log(f"pause {trial + 1}: {step}")
            first.kill()
            second.kill()
        return tally

    def redis_outage(self) -> Tally:
        from executions.dispatcher import dispatch

        assert self.redis is not None
        tally = Tally("redis-outage")
        outage = self.args.outage
        worker = self.worker()
        for trial in range(self.args.trials):
            running = dispatch(
                "diag.write",
                {"rows": 10, "steps": 3, "pause": min(outage * 0.75, 120)},
                trigger_source="cli",
            )
            self.wait(lambda e=running: e.events.filter(type="started").exists(), 60)
            delayed = dispatch(
                "diag.write", {"rows": 10}, trigger_source="cli", delay_seconds=outage / 2 + 1
            )
            time.sleep(1)  # the worker takes the delayed message and holds it
            self.redis.stop()
            time.sleep(outage)
            self.redis.start()
            reset_broker_connections()
            back = time.monotonic()
            workers = [worker]

            def recovered(b: tuple[Any, Any] = (running, delayed), w: list[Any] = workers) -> bool:
                if not w[0].alive():  # as a restart policy would
                    tally.note("worker died (started again)")
                    w[0] = self.worker()
                return self.finished(*b)

            done = self.wait(recovered, self.args.recover_timeout)
            worker = workers[0]
            if done:
                tally.recover_seconds.append(time.monotonic() - back)
            for execution in (running, delayed):
                self.judge(tally, execution, self.written_once)
            log(f"outage {trial + 1}: worker {'alive' if worker.alive() else 'dead'}")
        return tally

    def redis_empty(self) -> Tally:
        from executions.dispatcher import dispatch

        assert self.redis is not None
        tally = Tally("redis-empty")
        for trial in range(self.args.trials):
            queued = [
                dispatch("diag.write", {"rows": 5}, trigger_source="cli")
                for _ in range(self.args.queued)
            ]
            self.redis.kill()
            self.redis.start()
            reset_broker_connections()
            back = time.monotonic()
            worker = self.worker()
            done = self.wait(lambda q=queued: self.finished(*q), self.args.recover_timeout)
            if done:
                tally.recover_seconds.append(time.monotonic() - back)
            for execution in queued:
                self.judge(tally, execution, self.written_once)
            worker.stop()
            log(f"empty restart {trial + 1}: {'all finished' if done else 'not all finished'}")
        return tally


if __name__ == "__main__":
    main()
