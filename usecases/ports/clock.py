"""Clock: the only way a use case learns the time (house habit 4: time is an input)."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int:
        """Wall clock, epoch milliseconds (validation windows, retention)."""
        ...

    def monotonic_s(self) -> float:
        """Seconds on a clock that never goes back (deadlines, backoff, intervals)."""
        ...


class SystemClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def monotonic_s(self) -> float:
        return time.monotonic()


class FakeClock:
    """A clock tests move by hand: `advance(seconds)` moves both readings together."""

    def __init__(self, now_ms: int = 1_750_000_000_000, monotonic_s: float = 1_000.0) -> None:
        self._now_ms = now_ms
        self._monotonic_s = monotonic_s

    def now_ms(self) -> int:
        return self._now_ms

    def monotonic_s(self) -> float:
        return self._monotonic_s

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go back")
        self._monotonic_s += seconds
        self._now_ms += round(seconds * 1000)
