"""A real Celery worker process for tests that need one (and for benchmarks).

``start_celery_worker`` launches ``celery -A spine worker`` as a subprocess in its own
process group, with the same ``DATABASE_URL``/``REDIS_URL`` as the test process
except that the database is the test database pytest-django created (workers must see
what the tests commit, so such tests use ``django_db(transaction=True)``). It returns
once the worker answers a ping. ``CeleryWorker.stop()`` ends it gracefully,
``kill()`` sends SIGKILL to the whole group (a machine dying mid-run), ``pause()`` and
``resume()`` send SIGSTOP and SIGCONT (a machine that froze, then came back).

The ``celery_worker`` fixture gives each test module one worker; tests that kill
workers start theirs with the ``workers`` factory, which kills them all at teardown.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
QUEUES = ("default", "backfill", "maintenance")


def database_url(db: Mapping[str, Any]) -> str:
    """A ``DATABASE_URL`` for a Django database settings dict (the test database)."""
    engine = db["ENGINE"]
    if not engine.endswith("postgresql"):
        raise RuntimeError(f"a Celery worker test needs PostgreSQL, not {engine}")
    user = quote(db.get("USER") or "", safe="")
    password = quote(str(db.get("PASSWORD") or ""), safe="")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = db.get("HOST") or "127.0.0.1"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{auth}{host}{port}/{db['NAME']}"


@dataclass
class CeleryWorker:
    """A running worker subprocess."""

    process: subprocess.Popen[bytes]
    hostname: str
    log_path: Path
    env: dict[str, str] = field(repr=False)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the worker and its pool processes at once (no chance to clean up)."""
        if self.alive():
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def pause(self) -> None:
        """SIGSTOP the worker and its pool processes: they stop mid-instruction."""
        os.killpg(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT a paused worker: it carries on where it stopped."""
        os.killpg(self.process.pid, signal.SIGCONT)

    def stop(self, timeout: float = 15) -> None:
        """Warm shutdown (finish current tasks), SIGKILL if it takes too long."""
        if not self.alive():
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()


def worker_env(db_url: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The test process's environment, pointed at ``db_url``, plus ``extra``."""
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": db_url,
            "EXECUTION_BACKEND": "celery",
            "SPINE_DIAGNOSTIC_PIPELINES": "true",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")])),
            "LOG_FORMAT": "console",
        }
    )
    env.update(extra or {})
    if not env.get("REDIS_URL"):
        raise RuntimeError("a Celery worker needs REDIS_URL")
    return env


def start_celery_worker(
    db_url: str,
    log_dir: Path,
    *,
    env: Mapping[str, str] | None = None,
    queues: tuple[str, ...] = QUEUES,
    concurrency: int = 2,
    loglevel: str = "INFO",
    extra_args: tuple[str, ...] = (),
    ready_timeout: float = 60,
) -> CeleryWorker:
    """Start a prefork worker on ``queues`` and wait until it answers a ping."""
    hostname = f"spine-test-{uuid.uuid4().hex[:8]}@localhost"
    log_path = log_dir / f"{hostname.split('@')[0]}.log"
    full_env = worker_env(db_url, env)
    if "SPINE_ARCHIVE_DIR" not in (env or {}):
        # Never var/archive: the worker's raw archive is beside its log unless given.
        full_env["SPINE_ARCHIVE_DIR"] = str(log_dir / "archive")
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "spine",
        "worker",
        "-Q",
        ",".join(queues),
        "-c",
        str(concurrency),
        "--pool",
        "prefork",
        "-n",
        hostname,
        "--loglevel",
        loglevel,
        "--without-gossip",
        "--without-mingle",
        *extra_args,
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            command,
            cwd=PROJECT_ROOT,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    worker = CeleryWorker(process=process, hostname=hostname, log_path=log_path, env=full_env)
    try:
        _wait_for_ping(worker, ready_timeout)
    except BaseException:
        worker.kill()
        raise
    return worker


def _wait_for_ping(worker: CeleryWorker, timeout: float) -> None:
    from celery import Celery

    from spine.celery import app

    own_broker = worker.env["REDIS_URL"] != app.conf.broker_url
    # A worker on a broker of its own (a test's private Redis) is pinged there.
    control = (
        Celery("spine-ping", broker=worker.env["REDIS_URL"], set_as_current=False)
        if own_broker
        else app
    )
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not worker.alive():
                raise RuntimeError(f"Celery worker exited at start-up:\n{worker.log()}")
            replies = control.control.ping(destination=[worker.hostname], timeout=0.5)
            if any(worker.hostname in reply for reply in replies):
                return
    finally:
        if own_broker:
            control.close()
    raise RuntimeError(f"Celery worker did not answer a ping in {timeout}s:\n{worker.log()}")


@pytest.fixture(scope="session")
def celery_database_url(django_db_setup: None) -> str:
    """``DATABASE_URL`` of the test database, for worker subprocesses."""
    from django.conf import settings

    return database_url(settings.DATABASES["default"])


@pytest.fixture(scope="module")
def celery_worker_env() -> dict[str, str]:
    """Extra environment for the module's worker; override in a conftest or module."""
    return {}


@pytest.fixture(scope="module")
def celery_worker(
    celery_database_url: str,
    celery_worker_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[CeleryWorker]:
    """One real worker (prefork, 2 processes, all lanes) for the test module."""
    worker = start_celery_worker(
        celery_database_url, tmp_path_factory.mktemp("celery"), env=celery_worker_env
    )
    yield worker
    worker.stop()


WorkerFactory = Callable[..., CeleryWorker]


@pytest.fixture
def workers(
    backend_settings: Any,
    celery_database_url: str,
    celery_worker_env: dict[str, str],
    inbox: Path,
    archive_dir: Path,
    tmp_path: Path,
) -> Iterator[WorkerFactory]:
    """Start real workers on demand: ``workers(**extra_env)`` returns a new one on the
    module's environment, the test's inbox and raw archive. Every worker started is
    killed at teardown."""
    backend_settings.EXECUTION_BACKEND = "celery"
    started: list[CeleryWorker] = []

    def start(**extra_env: str) -> CeleryWorker:
        env = {
            **celery_worker_env,
            "SPINE_INBOX_DIR": str(inbox),
            "SPINE_ARCHIVE_DIR": str(archive_dir),
            **extra_env,
        }
        worker = start_celery_worker(celery_database_url, tmp_path, env=env)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.kill()
