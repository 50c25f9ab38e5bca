"""Configuration of the FINRA Query API client: one frozen, validated value object.

:func:`client_config` reads it from the ``FINRA_*`` variables with :mod:`spine.config`'s
parsers, so a bad value is one line naming the variable.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from spine.config import env_float, env_http_url, env_int, parse_redis_url

#: FINRA refuses pages larger than this (it reports it as ``Record-Max-Limit``).
MAX_PAGE_SIZE = 5000


def _positive(value: float) -> str | None:
    if not math.isfinite(value):
        return "must be a finite number"
    return None if value > 0 else "must be greater than 0"


def _non_negative(value: int) -> str | None:
    return None if value >= 0 else "must be 0 or greater"


def _at_least_one(value: int) -> str | None:
    return None if value >= 1 else "must be 1 or greater"


def _page_size(value: int) -> str | None:
    if 1 <= value <= MAX_PAGE_SIZE:
        return None
    return f"must be between 1 and {MAX_PAGE_SIZE}"


def _http_url(value: str) -> str | None:
    if value.startswith(("http://", "https://")) and len(value) > len("https://"):
        return None
    return "must be an http:// or https:// URL"


def _redis_url(value: str | None) -> str | None:
    if value is None or value.startswith(("redis://", "rediss://", "unix://")):
        return None
    return "must be a redis://, rediss:// or unix:// URL"


#: Per-field range checks, shared by ``__post_init__`` and ``from_env`` so that
#: both report the same rule (one by field name, the other by variable name).
_RULES: dict[str, Callable[[Any], str | None]] = {
    "base_url": _http_url,
    "connect_timeout": _positive,
    "read_timeout": _positive,
    "page_size": _page_size,
    "max_retries": _non_negative,
    "backoff_base": _positive,
    "backoff_max": _positive,
    "requests_per_second": _positive,
    "breaker_fail_max": _at_least_one,
    "breaker_reset_timeout": _positive,
    "redis_url": _redis_url,
}


@dataclass(frozen=True, slots=True)
class FinraClientConfig:
    """Settings for :class:`otc.finra.client.FinraClient`.

    Times are in seconds. ``max_retries`` counts retries, so one logical request
    makes at most ``max_retries + 1`` HTTP attempts. ``redis_url`` (optional)
    makes the circuit breaker's state shared by every process that uses it.
    """

    base_url: str = "https://api.finra.org"
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    page_size: int = MAX_PAGE_SIZE
    max_retries: int = 3
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    requests_per_second: float = 10.0
    breaker_fail_max: int = 5
    breaker_reset_timeout: float = 60.0
    redis_url: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))
        for name, rule in _RULES.items():
            problem = rule(getattr(self, name))
            if problem:
                raise ValueError(f"{name}={getattr(self, name)!r}: {problem}")
        if self.backoff_max < self.backoff_base:
            raise ValueError(
                f"backoff_max={self.backoff_max!r}: must not be below "
                f"backoff_base={self.backoff_base!r}"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> FinraClientConfig:
        """Build a config from ``FINRA_API_*``, ``FINRA_BREAKER_*`` and ``REDIS_URL``;
        unset or empty variables keep the defaults. The connect timeout is the smaller
        of its default and ``FINRA_API_TIMEOUT`` (the read timeout).

        Raises:
            spine.config.ConfigError: a ``ValueError`` naming the variable, its value and
            what is allowed.
        """
        default = cls()
        read_timeout = env_float(environ, "FINRA_API_TIMEOUT", default.read_timeout)
        return cls(
            base_url=env_http_url(environ, "FINRA_API_BASE_URL", default.base_url),
            connect_timeout=min(default.connect_timeout, read_timeout),
            read_timeout=read_timeout,
            page_size=env_int(
                environ, "FINRA_API_PAGE_SIZE", default.page_size, minimum=1, maximum=MAX_PAGE_SIZE
            ),
            max_retries=env_int(environ, "FINRA_API_MAX_RETRIES", default.max_retries, maximum=100),
            requests_per_second=env_float(environ, "FINRA_API_RPS", default.requests_per_second),
            breaker_fail_max=env_int(
                environ, "FINRA_BREAKER_FAIL_MAX", default.breaker_fail_max, minimum=1
            ),
            breaker_reset_timeout=env_float(
                environ, "FINRA_BREAKER_RESET_SECONDS", default.breaker_reset_timeout
            ),
            redis_url=parse_redis_url(environ),
        )


@functools.cache
def environment_config() -> FinraClientConfig:
    """This process's ``FINRA_*`` variables, parsed once."""
    return FinraClientConfig.from_env(os.environ)


def client_config() -> FinraClientConfig:
    """The config FINRA clients use: ``settings.FINRA_CLIENT`` when a deployment or a
    test sets one, else :func:`environment_config`."""
    override = getattr(settings, "FINRA_CLIENT", None)
    return override if override is not None else environment_config()
