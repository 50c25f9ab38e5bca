"""The FINRA circuit breaker in ``/health/ready`` details.

Informational only: when FINRA is down the API still serves what Market Spine
holds, so an open circuit must not take this process out of rotation. Operators (and
the ``spine_finra_circuit_state`` gauge) see it here instead.
"""

from __future__ import annotations

from typing import Any

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
