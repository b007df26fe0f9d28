"""`Recent`: the last result of an async computation, reused for `ttl_s`, with one computation at a time.

For the operator surfaces (docs/SECURITY.md §4): a scrape of /metrics fans out to every node and merges ~MBs of
text, a readiness check touches four services; a burst of callers (or an anonymous flood) must not multiply
that work. Concurrent callers of a stale value await the same computation; a failure is not kept.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Recent(Generic[T]):
    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._value: T | None = None
        self._at_s = float("-inf")
        self._running: asyncio.Future[T] | None = None
        self.computed = 0  # how many computations ran (tests, logs)

    async def get(self, compute: Callable[[], Awaitable[T]]) -> T:
        if self._value is not None and self._clock() - self._at_s < self.ttl_s:
            return self._value
        if self._running is None:
            self._running = asyncio.ensure_future(self._refresh(compute))
        # shield: one caller going away (a client disconnect) must not cancel the others' computation
        return await asyncio.shield(self._running)

    async def _refresh(self, compute: Callable[[], Awaitable[T]]) -> T:
        try:
            value = await compute()
            self.computed += 1
            self._value, self._at_s = value, self._clock()
            return value
        finally:
            self._running = None
