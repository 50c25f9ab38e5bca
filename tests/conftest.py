"""Shared fixtures for the Market Spine suite."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

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


@pytest.fixture
def real_otc_in_inbox(inbox: Path, real_otc_file: Path) -> str:
    """The real FINRA file copied into the test's inbox; its inbox path."""
    shutil.copyfile(real_otc_file, inbox / real_otc_file.name)
    return real_otc_file.name
