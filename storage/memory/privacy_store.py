"""InMemoryPrivacyStore: the PrivacyStore port as dicts, for handler tests; passes
tests/contracts/privacy_store_contract like PostgresPrivacyStore. `drivers` are profiles, `trips` trip id → driver
id; `readings`, `positioned_events` and `snapshots` stand for what erasure deletes and overwrites."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable

from domain.events import DomainEventBase, DriverErased
from domain.privacy import PrivacyEvent, PrivacyState, fold
from storage.event_store_contract import ConcurrencyConflict
from usecases.ports.privacy_store import Scrubbed


class InMemoryPrivacyStore:
    def __init__(self, drivers: Iterable[str] = ()) -> None:
        self.drivers: dict[str, dict] = {d: {"first_name": "A", "last_name": "B", "email": f"{d}@example.com",
                                             "phone": "+1", "date_of_birth": "1990-01-01"} for d in drivers}
        self.trips: dict[uuid.UUID, str] = {}
        self.readings: dict[str, int] = {}  # driver → stored readings
        self.positioned_events: dict[str, int] = {}  # driver → trip-stream events that carry a position
        self.snapshots: set[str] = set()
        self.streams: dict[str, list[DomainEventBase]] = {}
        self.states: dict[str, PrivacyState] = {}

    async def state(self, driver_id: str) -> PrivacyState | None:
        if driver_id not in self.drivers:
            return None
        return self.states.get(driver_id, PrivacyState(driver_id=driver_id))

    async def trip_owner(self, trip_id: uuid.UUID) -> str | None:
        return self.trips.get(trip_id)

    async def record(self, state: PrivacyState, event: PrivacyEvent) -> PrivacyState:
        stream = self.streams.setdefault(state.driver_id, [])
        if len(stream) != state.version:
            raise ConcurrencyConflict(f"privacy:{state.driver_id}", state.version, len(stream), "stream moved")
        stream.append(event)
        self.states[state.driver_id] = new = fold(state, event)
        return new

    async def erase(self, state: PrivacyState, pseudonym: str, event: Callable[[Scrubbed], DriverErased]) -> Scrubbed:
        driver_id = state.driver_id
        self.drivers[driver_id] = {"first_name": "erased", "last_name": pseudonym,
                                   "email": f"{pseudonym}@erased.invalid", "phone": None, "date_of_birth": None}
        scrubbed = Scrubbed(readings=self.readings.pop(driver_id, 0), events=self.positioned_events.pop(driver_id, 0),
                            snapshots=int(driver_id in self.snapshots))
        self.snapshots.discard(driver_id)
        await self.record(state, event(scrubbed))
        return scrubbed

    async def withheld(self) -> list[PrivacyState]:
        default = {"mode": "full", "erased": False, "private_trips": frozenset()}
        return [s for s in self.states.values()
                if (s.mode, s.erased, s.private_trips) != tuple(default.values())]
