"""Noting Celery's soft time limit, so a handler that swallows it is still timed out."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest
from billiard.exceptions import SoftTimeLimitExceeded
from billiard.pool import soft_timeout_sighandler

from executions.interrupts import soft_time_limit_fired, watch_soft_time_limit

pytestmark = pytest.mark.embedded


@pytest.fixture
def sigusr1() -> Iterator[None]:
    previous = signal.getsignal(signal.SIGUSR1)
    yield
    signal.signal(signal.SIGUSR1, previous)


def test_the_pool_handler_is_wrapped_and_a_fired_limit_is_noted(sigusr1: None) -> None:
    signal.signal(signal.SIGUSR1, soft_timeout_sighandler)  # what a prefork child has
    watch_soft_time_limit()
    assert not soft_time_limit_fired()
    with pytest.raises(SoftTimeLimitExceeded):
        os.kill(os.getpid(), signal.SIGUSR1)
    assert soft_time_limit_fired(), "the limit still raises, and is remembered"
    wrapped = signal.getsignal(signal.SIGUSR1)
    watch_soft_time_limit()  # the next run starts clean, without wrapping twice
    assert not soft_time_limit_fired()
    assert signal.getsignal(signal.SIGUSR1) is wrapped


def test_another_sigusr1_handler_is_left_alone(sigusr1: None) -> None:
    seen: list[int] = []
    signal.signal(signal.SIGUSR1, lambda signum, frame: seen.append(signum))
    handler = signal.getsignal(signal.SIGUSR1)
    watch_soft_time_limit()
    assert signal.getsignal(signal.SIGUSR1) is handler
    os.kill(os.getpid(), signal.SIGUSR1)
    assert seen == [signal.SIGUSR1]
    assert not soft_time_limit_fired()
