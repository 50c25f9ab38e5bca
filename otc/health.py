"""The FINRA circuit breaker in ``/health/ready`` details, and the raw archive's check.

Informational only: when FINRA is down the API still serves what Market Spine
holds, so an open circuit must not take this process out of rotation. Operators (and
the ``spine_finra_circuit_state`` gauge) see it here instead.
"""

from __future__ import annotations

from typing import Any

from otc import archive
from otc.finra import breaker_for, breaker_status
from otc.finra.config import client_config
from spine import health

DETAIL_NAME = "finra_breaker"


def finra_breaker_detail() -> dict[str, Any]:
    """State, open-until and failure count of this process's FINRA breaker.

    With ``REDIS_URL`` the state is the one all processes share; reading it costs one
    Redis round trip with a short timeout.
    """
    config = client_config()
    return {
        **breaker_status(breaker_for(config)).as_dict(),
        "fail_max": config.breaker_fail_max,
        "reset_timeout_seconds": config.breaker_reset_timeout,
        "shared": config.redis_url is not None,
    }


def register() -> None:
    """Add the detail provider (called from the app's ``ready``)."""
    health.register_detail_provider(DETAIL_NAME, finra_breaker_detail)


ARCHIVE_CHECK = "archive"


def check_archive() -> health.CheckOutcome:
    """The raw archive answers and takes writes: a small object is written, read back
    and deleted (a few milliseconds on disk, three small requests on S3)."""
    try:
        where = archive.probe()
    except archive.ArchiveError as exc:
        return health.CheckOutcome("fail", str(exc)[:300], {"location": archive.describe_storage()})
    return health.CheckOutcome("ok", f"writable at {where}", {"location": where})


def register_archive() -> None:
    """Add the archive check (non-critical: reads of analytics go on without it)."""
    health.register_check(ARCHIVE_CHECK, check_archive, critical=False)
