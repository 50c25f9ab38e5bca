"""The bare Celery baseline for bench/dispatch.py: a task that only counts itself.

Counting (one Redis INCR) is how the benchmark knows the tasks have all run without
storing results; it is the whole of the task's work.
"""

from __future__ import annotations

import os

import redis
from celery import shared_task

COUNTER_KEY = "spine:bench:empty"
_client: redis.Redis | None = None


def counter() -> redis.Redis:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(os.environ["REDIS_URL"])
    return _client


@shared_task(name="bench.empty", ignore_result=True, acks_late=True)
def empty(run: str) -> None:
    counter().incr(f"{COUNTER_KEY}:{run}")
