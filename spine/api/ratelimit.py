"""Per-client request budgets for the API, counted in the shared cache (docs/api.md#rate-limits)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django_ratelimit.core import get_usage
from redis.exceptions import RedisError
from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request

from spine.metrics import RATELIMIT_REJECTIONS, RATELIMIT_STORE_ERRORS

logger = logging.getLogger("spine.api.ratelimit")

READ = "read"
WRITE = "write"
BUDGETS = (READ, WRITE)
_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# Errors the counter store raises when it is unreachable (Redis down, timeouts).
STORE_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError)


@dataclass(frozen=True)
class Usage:
    """One request's view of its budget, as reported in the response headers."""

    budget: str
    limit: int
    remaining: int
    reset_seconds: int
    limited: bool

    def headers(self) -> dict[str, str]:
        """``X-RateLimit-*`` for every limited response; ``Retry-After`` when refused.

        ``X-RateLimit-Reset`` is the number of seconds until the budget's window
        ends (like ``Retry-After``), not an epoch timestamp.
        """
        values = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_seconds),
        }
        if self.limited:
            values["Retry-After"] = str(self.reset_seconds)
        return values


def budget_for(method: str | None) -> str:
    """Safe methods spend the read budget, everything else the write budget."""
    return READ if (method or "GET").upper() in SAFE_METHODS else WRITE


def rate_for(budget: str) -> str:
    """The configured rate string of a budget (read at request time)."""
    return settings.SPINE_RATELIMIT_READ if budget == READ else settings.SPINE_RATELIMIT_WRITE


def rate_parts(rate: str) -> tuple[int, int]:
    """``"600/m"`` → ``(600, 60)``; ``"10/5s"`` → ``(10, 5)`` (as django-ratelimit reads it)."""
    count, _, period = rate.partition("/")
    unit = period[-1:] if period[-1:] in _PERIODS else "s"
    multiple = period[: -1 if period[-1:] in _PERIODS else None]
    return int(count), _PERIODS[unit] * (int(multiple) if multiple else 1)


def client_key(request: Request) -> str:
    """``user:<pk>`` after authentication, ``ip:<address>`` for anonymous clients.

    The address is ``REMOTE_ADDR``: behind a reverse proxy, have the proxy or the WSGI
    server set it to the real client address, or every anonymous client shares one
    budget.
    """
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    return f"ip:{request.META.get('REMOTE_ADDR') or 'unknown'}"


def spend(request: Request, budget: str | None = None) -> Usage | None:
    """Spend one unit of the request's budget; ``None`` when not limited at all.

    ``None`` means rate limiting is switched off (``SPINE_RATELIMIT_ENABLED``) or
    the counter store is down and the policy is to fail open.
    """
    if not settings.SPINE_RATELIMIT_ENABLED:
        return None
    budget = budget or budget_for(request.method)
    rate = rate_for(budget)
    key = client_key(request)
    try:
        usage = get_usage(
            request,
            group=f"spine.api.{budget}",
            key=lambda _group, _request: key,
            rate=rate,
            increment=True,
        )
    except STORE_ERRORS as exc:
        return _store_unavailable(budget, rate, exc)
    if usage is None:
        # django-ratelimit's own "store failed" path (RATELIMIT_FAIL_OPEN is on) or its
        # global switch RATELIMIT_ENABLE: nothing to report.
        return None
    limit = int(usage["limit"])
    # The window ends after the second ``time_left`` from now, so the new one starts
    # at most ``time_left + 1`` seconds away; never promise less than a second.
    reset = max(int(usage["time_left"]) + 1, 1)
    limited = bool(usage["should_limit"])
    if limited:
        RATELIMIT_REJECTIONS.labels(budget=budget).inc()
    return Usage(
        budget=budget,
        limit=limit,
        remaining=max(limit - int(usage["count"]), 0),
        reset_seconds=reset,
        limited=limited,
    )


def _store_unavailable(budget: str, rate: str, exc: BaseException) -> Usage | None:
    RATELIMIT_STORE_ERRORS.labels(budget=budget).inc()
    if getattr(settings, "SPINE_RATELIMIT_FAIL_OPEN", True):
        logger.warning("rate-limit store unavailable, letting the request through: %s", exc)
        return None
    logger.warning("rate-limit store unavailable, refusing the request: %s", exc)
    limit, period = rate_parts(rate)
    RATELIMIT_REJECTIONS.labels(budget=budget).inc()
    return Usage(budget=budget, limit=limit, remaining=0, reset_seconds=period, limited=True)
