"""PrivacyStore: the privacy streams (`privacy:{driver_id}`) and their read models (driver_privacy, private_trips),
and the erasure of a driver's personal data (docs/PRIVACY.md). Real adapter storage/postgres/privacy.py, fake
storage/memory/privacy_store.py, one contract (tests/contracts/privacy_store_contract.py)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from domain.events import DriverErased
from domain.privacy import PrivacyEvent, PrivacyState


@dataclass(frozen=True, slots=True)
class Scrubbed:
    """What an erasure removed: raw readings deleted, event payloads whose positions were overwritten, snapshots
    deleted."""

    readings: int
    events: int
    snapshots: int


class PrivacyStore(Protocol):
    async def state(self, driver_id: str) -> PrivacyState | None:
        """The driver's consent (the default state when they never changed it); None for an unknown driver."""
        ...

    async def trip_owner(self, trip_id: uuid.UUID) -> str | None:
        """The driver of a stored trip, None for an unknown trip."""
        ...

    async def record(self, state: PrivacyState, event: PrivacyEvent) -> PrivacyState:
        """Append `event` to the privacy stream at `state.version + 1` and update the read model, in one
        transaction; the new state. Raises ConcurrencyConflict when the stream moved since `state` was read."""
        ...

    async def erase(self, state: PrivacyState, pseudonym: str, event: Callable[[Scrubbed], DriverErased]) -> Scrubbed:
        """Pseudonymise the profile, delete the raw readings and snapshots, overwrite the positions in the
        driver's trip-stream event payloads, and record `event(scrubbed)`: one transaction."""
        ...

    async def withheld(self) -> list[PrivacyState]:
        """Every driver whose state is not the default (a mode other than full, private trips, erased)."""
        ...
