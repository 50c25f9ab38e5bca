"""Client-side rate limiting for calls to FINRA: one budget per process, or per Redis."""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid

from pyrate_limiter import InMemoryBucket, Limiter, Rate

logger = logging.getLogger(__name__)

#: Extra milliseconds added to every computed wait, so that a request released
#: right at a window's edge still lands outside it on FINRA's side.
_EDGE_BUFFER_MS = 50

_ITEM_NAME = "finra"
#: The shared window is this much longer than the rate's: a request admitted right at
#: the edge may reach FINRA sooner after the oldest one than it was admitted (the
#: oldest may have spent longer connecting), and FINRA counts arrivals.
_SHARED_EDGE_MS = 100
#: The Redis key of the shared request log (a sorted set of the window's requests).
REDIS_KEY = "spine:finra:requests"


def _rate_for(requests_per_second: float) -> Rate:
    """Express a (possibly fractional) rate as whole requests per window in milliseconds."""
    limit = max(1, math.floor(requests_per_second))
    interval_ms = max(1, round(limit * 1000 / requests_per_second))
    return Rate(limit, interval_ms)


#: A strict sliding-window log in one sorted set, on Redis's own clock (so processes on
#: different machines agree), checked and appended atomically. Returns 0 when the
#: request may go, else the microseconds until the oldest request leaves the window.
_ACQUIRE_SCRIPT = """
local key = KEYS[1]
local limit = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - interval)
if redis.call('ZCARD', key) < limit then
  redis.call('ZADD', key, now, ARGV[3])
  redis.call('PEXPIRE', key, math.ceil(interval / 1000) + 1000)
  return 0
end
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
return math.max(1, tonumber(oldest[2]) + interval - now)
"""


class _RedisLog:
    """The request log in Redis, shared by every process that uses the same key."""

    def __init__(self, rate: Rate, redis_url: str) -> None:
        import redis

        self.rate = rate
        self.client = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
        self.script = self.client.register_script(_ACQUIRE_SCRIPT)
        self.client.ping()

    def acquire(self) -> None:
        interval_us = (self.rate.interval + _SHARED_EDGE_MS) * 1000
        while True:
            member = uuid.uuid4().hex
            args = [self.rate.limit, interval_us, member]
            wait_us = int(self.script(keys=[REDIS_KEY], args=args))
            if wait_us <= 0:
                return
            time.sleep(wait_us / 1_000_000)


def _redis_log(rate: Rate, redis_url: str) -> _RedisLog | None:
    """The shared log, or ``None`` (with a warning) when Redis cannot be reached."""
    import redis

    try:
        return _RedisLog(rate, redis_url)
    except redis.RedisError as exc:
        logger.warning("FINRA rate limit: Redis unreachable (%s); limiting this process only", exc)
        return None


class RateLimiter:
    """Blocks until a request may be sent at ``requests_per_second``.

    With ``redis_url`` the request log lives in Redis, so every process that uses the
    same Redis shares the one budget; without it (or if Redis is down when it is
    built, or fails later) the log is in this process's memory.
    """

    def __init__(self, requests_per_second: float, *, redis_url: str | None = None) -> None:
        if not requests_per_second > 0 or not math.isfinite(requests_per_second):
            raise ValueError(f"requests_per_second={requests_per_second!r}: must be > 0")
        self.requests_per_second = requests_per_second
        self.rate = _rate_for(requests_per_second)
        self._local = Limiter(InMemoryBucket([self.rate]), buffer_ms=_EDGE_BUFFER_MS)
        self._shared = _redis_log(self.rate, redis_url) if redis_url else None

    @property
    def shared(self) -> bool:
        """Whether the budget is shared through Redis."""
        return self._shared is not None

    def acquire(self) -> None:
        """Wait (sleeping this thread) until one more request fits in the window."""
        if self._shared is not None:
            import redis

            try:
                self._shared.acquire()
                return
            except redis.RedisError as exc:  # fall back to this process's budget
                logger.warning(
                    "FINRA rate limit: Redis failed (%s); limiting this process only", exc
                )
        if not self._local.try_acquire(_ITEM_NAME, blocking=True):
            # Only possible if one request could never fit, which _rate_for rules out.
            raise RuntimeError(f"rate limiter {self.rate} refused a single request")

    def close(self) -> None:
        """Stop the limiters' background housekeeping threads."""
        self._local.close()
        if self._shared is not None:
            self._shared.client.close()

    def __repr__(self) -> str:
        where = "redis" if self.shared else "process"
        return f"RateLimiter({self.rate}, {where})"


_shared: dict[tuple[float, str | None], RateLimiter] = {}
_shared_lock = threading.Lock()


def process_rate_limiter(requests_per_second: float, redis_url: str | None = None) -> RateLimiter:
    """The limiter shared by every client in this process that uses this rate (and Redis).

    Clients are cheap and may be created per task; the budget must not be, or
    two clients in one process would each get the full rate.
    """
    key = (requests_per_second, redis_url)
    with _shared_lock:
        limiter = _shared.get(key)
        if limiter is None:
            limiter = _shared[key] = RateLimiter(requests_per_second, redis_url=redis_url)
        return limiter
