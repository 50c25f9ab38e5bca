"""Pacing for bulk replays: at most N releases a minute, with an injectable clock.

Pure timing, no database: :class:`Pacer` spaces releases at least ``60 / N`` seconds
apart and sleeps in short slices, calling a checkpoint between them (the batch's
cancel check), so a paced run can still be stopped. Tests pass a fake clock and sleep.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

SLICE_SECONDS = 1.0


@dataclass
class Pacer:
    """Release at most ``rate_per_minute`` times in any minute, the first at once."""

    rate_per_minute: int
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    checkpoint: Callable[[], None] | None = None
    _next_at: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.rate_per_minute < 1:
            raise ValueError("the replay rate must be at least 1 a minute")

    @property
    def interval(self) -> float:
        return 60.0 / self.rate_per_minute

    def wait(self) -> float:
        """Block until the next release is allowed; return the release time."""
        if self._next_at is not None:
            while (remaining := self._next_at - self.clock()) > 0:
                self.sleep(min(remaining, SLICE_SECONDS))
                if self.checkpoint is not None:
                    self.checkpoint()
        released = self.clock()
        self._next_at = released + self.interval
        return released


def paced_seconds(count: int, rate_per_minute: int) -> float:
    """How long releasing ``count`` items at ``rate_per_minute`` takes (first at once)."""
    return max(count - 1, 0) * 60.0 / rate_per_minute
