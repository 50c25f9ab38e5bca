"""Client-side rate limiting for calls to FINRA."""

from __future__ import annotations

import math
import threading

from pyrate_limiter import InMemoryBucket, Limiter, Rate

#: Extra milliseconds added to every computed wait, so that a request released
#: right at a window's edge still lands outside it on FINRA's side.
_EDGE_BUFFER_MS = 50

_ITEM_NAME = "finra"


def _rate_for(requests_per_second: float) -> Rate:
    """Express a (possibly fractional) rate as whole requests per window in milliseconds."""
    limit = max(1, math.floor(requests_per_second))
    interval_ms = max(1, round(limit * 1000 / requests_per_second))
    return Rate(limit, interval_ms)


class RateLimiter:
    """Blocks until a request may be sent at ``requests_per_second``."""

    def __init__(self, requests_per_second: float) -> None:
        if not requests_per_second > 0 or not math.isfinite(requests_per_second):
            raise ValueError(f"requests_per_second={requests_per_second!r}: must be > 0")
        self.requests_per_second = requests_per_second
        self.rate = _rate_for(requests_per_second)
        self._limiter = Limiter(InMemoryBucket([self.rate]), buffer_ms=_EDGE_BUFFER_MS)

    def acquire(self) -> None:
        """Wait (sleeping this thread) until one more request fits in the window."""
        if not self._limiter.try_acquire(_ITEM_NAME, blocking=True):
            # Only possible if one request could never fit, which _rate_for rules out.
            raise RuntimeError(f"rate limiter {self.rate} refused a single request")

    def close(self) -> None:
        """Stop the limiter's background housekeeping thread."""
        self._limiter.close()

    def __repr__(self) -> str:
        return f"RateLimiter({self.rate})"


_shared: dict[float, RateLimiter] = {}
_shared_lock = threading.Lock()


def process_rate_limiter(requests_per_second: float) -> RateLimiter:
    """The limiter shared by every client in this process that uses this rate.

    Clients are cheap and may be created per task; the budget must not be, or
    two clients in one process would each get the full rate.
    """
    with _shared_lock:
        limiter = _shared.get(requests_per_second)
        if limiter is None:
            limiter = _shared[requests_per_second] = RateLimiter(requests_per_second)
        return limiter
