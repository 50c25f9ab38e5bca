"""Shared fixtures for the Market Spine suite."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings

from executions.backends import get_backend
from executions.backends.local import LocalBackend
from executions.backends.stub import StubBackend

# Property tests draw the same examples on every run and every machine: a failure they
# find is reproducible, and CI never passes or fails by the luck of the draw.
hypothesis_settings.register_profile("spine", derandomize=True, database=None)
hypothesis_settings.load_profile("spine")

# Fixtures of the support modules, for every folder: real Celery workers, a Redis of a test's own.
pytest_plugins = [
    "tests.support.celery_worker",
    "tests.support.redis_server",
    "tests.support.s3_server",
]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
FINRA_DIR = PROJECT_ROOT.parent / "shared" / "finra"
REAL_OTC_FILE = FINRA_DIR / "finra_otc_weekly_otc_20251215.psv"


@pytest.fixture(scope="session")
def project_root() -> Path:
    return PROJECT_ROOT


@pytest.fixture(scope="session")
def real_otc_file() -> Path:
    """FINRA's real OTC weekly file, read from the shared folder (never copied)."""
    if not REAL_OTC_FILE.exists():
        raise FileNotFoundError(f"the real FINRA sample is expected at {REAL_OTC_FILE}")
    return REAL_OTC_FILE


@pytest.fixture(autouse=True)
def inbox(settings: Any, tmp_path: Path) -> Path:
    """Each test's own inbox (SPINE_INBOX_DIR): its ``tmp_path``, so files a test
    writes there are named to pipelines by their path relative to it."""
    settings.SPINE_INBOX_DIR = tmp_path
    return tmp_path


@pytest.fixture(autouse=True)
def archive_dir(settings: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Each test's own raw archive directory, so no test writes into var/archive (a new
    STORAGES dict: Django's setting_changed receiver drops the cached storage)."""
    path = tmp_path_factory.mktemp("archive")
    archive = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(path)},
    }
    settings.STORAGES = {**settings.STORAGES, "archive": archive}
    return path


@pytest.fixture
def real_otc_in_inbox(inbox: Path, real_otc_file: Path) -> str:
    """The real FINRA file copied into the test's inbox; its inbox path."""
    shutil.copyfile(real_otc_file, inbox / real_otc_file.name)
    return real_otc_file.name


@pytest.fixture
def backend_settings(settings: Any) -> Any:
    """The settings the backend fixtures change. A folder's conftest overrides it to start
    from its own (the execution tests' short timings, the real dead-letter queue)."""
    return settings


@pytest.fixture
def stub_backend(backend_settings: Any) -> Iterator[StubBackend]:
    """The configured backend records submissions and runs nothing ("the broker")."""
    backend_settings.EXECUTION_BACKEND = "stub"
    backend = get_backend()
    assert isinstance(backend, StubBackend)
    backend.reset()
    yield backend
    backend.reset()


@pytest.fixture
def local_backend(backend_settings: Any) -> Iterator[LocalBackend]:
    """Executions run in this process after their commit; all have finished at teardown."""
    backend_settings.EXECUTION_BACKEND = "local"
    backend = get_backend()
    assert isinstance(backend, LocalBackend)
    yield backend
    assert backend.wait_idle(timeout=30), "scheduled local runs did not finish"
