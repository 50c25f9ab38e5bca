"""FINRA Query API client: weekly OTC transparency data over HTTP."""

from otc.finra.breaker import BreakerStatus, breaker_for, breaker_status, build_breaker
from otc.finra.client import (
    DEFAULT_WEEKLY_SUMMARY_FIELDS,
    SUMMARY_TYPES,
    TIER_IDENTIFIERS,
    FinraClient,
)
from otc.finra.config import FinraClientConfig
from otc.finra.errors import (
    FinraError,
    FinraHTTPError,
    FinraProtocolError,
    FinraTransportError,
    FinraUnavailable,
)
from otc.finra.ratelimit import RateLimiter, process_rate_limiter
from otc.finra.rows import DOWNLOAD_COLUMNS, api_rows_to_lines

__all__ = [
    "DEFAULT_WEEKLY_SUMMARY_FIELDS",
    "DOWNLOAD_COLUMNS",
    "SUMMARY_TYPES",
    "TIER_IDENTIFIERS",
    "BreakerStatus",
    "FinraClient",
    "FinraClientConfig",
    "FinraError",
    "FinraHTTPError",
    "FinraProtocolError",
    "FinraTransportError",
    "FinraUnavailable",
    "RateLimiter",
    "api_rows_to_lines",
    "breaker_for",
    "breaker_status",
    "build_breaker",
    "process_rate_limiter",
]
