"""Shared fixtures for the Market Spine suite."""

from __future__ import annotations

from pathlib import Path

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
