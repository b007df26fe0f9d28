"""Which drivers' new readings the pipeline strips of positions (docs/PRIVACY.md §3): a set the consumer consults
once per reading (`domain.privacy.strip_drivers`), reloaded from the privacy read model every `refresh_s`.

Bounded: one query per `refresh_s` per consumer, never one per batch (the ingest hot path stays a set lookup). A
consent change committed at time T is applied to every batch prepared after T + `refresh_s` (+ the reload query's
own time): the worst-case delay docs/PRIVACY.md §3 states (tests/unit/test_mileage_only.py checks it).
A reload that cannot reach the store waits it out through `retry` rather than run on a stale set: the pipeline
cannot persist without PostgreSQL anyway, and a stale set could store a position the driver withdrew.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from domain.privacy import PrivacyState, stripped_drivers
from usecases.ports.clock import Clock, SystemClock
from usecases.scoring_round import Retry, no_retry


class WithheldStates(Protocol):
    """The part of the PrivacyStore port this needs: every driver whose state withholds anything."""

    async def withheld(self) -> list[PrivacyState]: ...


@dataclass
class StrippedDrivers:
    store: WithheldStates
    refresh_s: float
    clock: Clock = field(default_factory=SystemClock)
    retry: Retry = no_retry
    drivers: frozenset[str] = frozenset()
    loaded_at_s: float | None = None  # monotonic; None: never loaded (the first call loads before answering)
    loads: int = 0

    async def current(self) -> frozenset[str]:
        """The drivers to strip now: the set as of at most `refresh_s` ago."""
        now = self.clock.monotonic_s()
        if self.loaded_at_s is None or now - self.loaded_at_s >= self.refresh_s:
            states = await self.retry(self.store.withheld, "read privacy modes")
            self.drivers = stripped_drivers(states)
            self.loaded_at_s = now
            self.loads += 1
        return self.drivers
