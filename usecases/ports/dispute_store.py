"""DisputeStore: what the dispute use case (usecases/disputes.py) reads and writes. Adapter:
storage/postgres/disputes.py. Disputes and their consequences are events of the driver's risk stream
(`risk:{driver_id}`); the `disputes` and `premium_ledger` tables are written in the same transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Protocol

from domain.events import DisputeDecided, DisputeOpened, DisputeRescored, DomainEvent
from domain.premium_ledger import LedgerEntry
from domain.scoring import PolicyTerms
from domain.trip_summary import TripSummary


@dataclass(frozen=True, slots=True)
class DisputeRecord:
    """A dispute as stored: how it was opened, and its decision once made (status open | accepted | rejected)."""

    opened: DisputeOpened
    status: str
    note: str | None = None
    decided_by: str | None = None
    decided_at_ms: int | None = None


@dataclass(frozen=True, slots=True)
class RescoreInputs:
    """The disputed trip as stored, the driver's latest score's window end (None: never scored: nothing to
    re-score), the trips of that window as stored (start order), and the active policy."""

    disputed: TripSummary | None
    window_end_ms: int | None
    trips: list[TripSummary]
    policy: PolicyTerms | None


class DisputeStore(Protocol):
    async def trip_episode(self, trip_id: uuid.UUID, episode_id: uuid.UUID) -> tuple[str, DomainEvent | None] | None:
        """(the trip's driver, the episode event of that trip or None when the trip has no such episode); None for
        an unknown trip."""
        ...

    async def open(self, event: DisputeOpened) -> bool:
        """Append `dispute_opened` and its `disputes` row; False (nothing written) when the episode is disputed."""
        ...

    async def get(self, dispute_id: uuid.UUID) -> DisputeRecord | None: ...

    async def page(self, driver_id: str | None, status: str | None, limit: int, offset: int
                   ) -> tuple[int, list[DisputeRecord]]:
        """Disputes newest first: of one driver (None: all), in one status (None: any)."""
        ...

    async def rescore_inputs(self, driver_id: str, trip_id: uuid.UUID, window_days: float) -> RescoreInputs: ...

    async def decide(self, decided: DisputeDecided, rescored: DisputeRescored | None,
                     adjusted_trip: TripSummary | None) -> bool:
        """One transaction: the decision (and, accepted, the re-score: its event, score row, ledger entry, the
        policy at its premium, the trip's summary without the episode). False when the dispute was decided
        meanwhile (nothing written); StalePolicy when the policy moved since the inputs were read."""
        ...

    async def ledger(self, driver_id: str, limit: int, offset: int) -> tuple[int, list[LedgerEntry]]: ...
