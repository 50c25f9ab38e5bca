"""FINRA's rate limit shared through Redis: limiters in separate connections share one budget."""

from __future__ import annotations

import threading
import time
from bisect import bisect_left

import pytest

from otc.finra.ratelimit import RateLimiter
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.embedded


def max_in_any_second(times: list[float]) -> int:
    times = sorted(times)
    return max((bisect_left(times, t + 1.0) - i for i, t in enumerate(times)), default=0)


def test_two_limiters_on_one_redis_share_the_budget(redis_server: RedisServer) -> None:
    url = redis_server.url()
    limiters = [RateLimiter(5.0, redis_url=url), RateLimiter(5.0, redis_url=url)]
    assert all(limiter.shared for limiter in limiters)
    sent: list[float] = []
    lock = threading.Lock()

    def send(limiter: RateLimiter) -> None:
        for _ in range(5):
            limiter.acquire()
            with lock:
                sent.append(time.monotonic())

    threads = [threading.Thread(target=send, args=(limiters[n % 2],)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    try:
        assert len(sent) == 20
        assert max_in_any_second(sent) <= 5
        assert sent[-1] - min(sent) < 5.0, "the limiter should not throttle far below the rate"
    finally:
        for limiter in limiters:
            limiter.close()


def test_without_redis_the_limiter_falls_back_to_this_process(redis_server: RedisServer) -> None:
    unreachable = RateLimiter(50.0, redis_url="redis://127.0.0.1:1/0")
    shared = RateLimiter(50.0, redis_url=redis_server.url())
    try:
        assert not unreachable.shared and shared.shared
        started = time.monotonic()
        for _ in range(51):
            unreachable.acquire()
        assert time.monotonic() - started >= 0.9
        redis_server.stop()  # Redis dies later: requests still go, within this process's budget
        started = time.monotonic()
        for _ in range(51):
            shared.acquire()
        assert time.monotonic() - started >= 0.9
    finally:
        unreachable.close()
        shared.close()
