"""InMemoryClaimStore: the ClaimStore port over an InMemoryEventStore's opened claims (the fake of `claims`);
decisions are kept beside them. Passes tests/contracts/claims_contract.py like the PostgreSQL store."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import msgspec

from domain.claims import ClaimOpening, ClaimStatus
from storage.memory.event_store import InMemoryEventStore
from usecases.ports.read_models import Row


class InMemoryClaimStore:
    def __init__(self, events: InMemoryEventStore) -> None:
        self._events = events
        self._decisions: dict[uuid.UUID, dict] = {}
        self._opened_at: dict[uuid.UUID, datetime] = {}

    def _row(self, opening: ClaimOpening, *, readings: bool) -> dict:
        row = {
            "claim_id": opening.claim_id, "crash_event_id": opening.crash_event_id, "driver_id": opening.driver_id,
            "trip_id": opening.trip_id, "occurred_at": datetime.fromtimestamp(opening.occurred_at_ms / 1000, UTC),
            "trigger": opening.trigger, "peak_g": opening.peak_g, "lat": opening.lat, "lon": opening.lon,
            "speed_kmh": opening.speed_kmh, "status": "open",
            "opened_at": self._opened_at.setdefault(opening.claim_id, datetime.now(UTC)),
            "decided_at": None, "decided_by": None, "note": None,
            **self._decisions.get(opening.claim_id, {}),
        }  # fmt: skip
        if readings:
            row["readings"] = msgspec.to_builtins(opening.readings)
        return row

    async def list_claims(self, *, status: str | None, driver_id: str | None, limit: int,
                          offset: int) -> tuple[int, Sequence[Row]]:
        rows = [self._row(o, readings=False) for o in self._events.claims.values()]
        rows = [r for r in rows if (status is None or r["status"] == status)
                and (driver_id is None or r["driver_id"] == driver_id)]
        rows.sort(key=lambda r: (-r["occurred_at"].timestamp(), str(r["claim_id"])))
        return len(rows), rows[offset : offset + limit]

    async def claim(self, claim_id: uuid.UUID) -> Row | None:
        opening = self._events.claims.get(claim_id)
        return None if opening is None else self._row(opening, readings=True)

    async def record_decision(self, claim_id: uuid.UUID, *, status: ClaimStatus, decided_by: uuid.UUID | None,
                              note: str | None, decided_at: datetime) -> Row | None:
        opening = self._events.claims.get(claim_id)
        if opening is None or claim_id in self._decisions:
            return None
        self._decisions[claim_id] = {"status": status, "decided_by": decided_by, "note": note,
                                     "decided_at": decided_at}
        return self._row(opening, readings=True)
