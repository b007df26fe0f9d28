"""Privacy consent handlers (docs/PRIVACY.md): read and change a driver's mode, mark a trip private, erase a driver.

Each change is decided by `domain.privacy`, recorded as an event of the `privacy:{id}` stream with its read model
(one transaction), then the driver's cached answers are invalidated on every replica and the live feeds told
(`PrivacyNotifier`), so routes and feeds withhold positions from the next request or message on.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Protocol

from domain import privacy
from domain.privacy import PrivacyState
from usecases.ports.cache import ResponseCache
from usecases.ports.clock import Clock
from usecases.ports.privacy_store import PrivacyStore, Scrubbed


class PrivacyNotifier(Protocol):
    async def privacy_changed(self, state: PrivacyState) -> None:
        """Tell every live-feed replica the driver's new state (they withhold positions from then on)."""
        ...

    async def forget_live(self, driver_id: str) -> None:
        """Delete what the live feeds hold of the driver for resume (their recent messages carry positions)."""
        ...


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: the user id and role recorded in the consent event."""

    user_id: str
    role: str


@dataclass(frozen=True, slots=True)
class Erasure:
    state: PrivacyState
    scrubbed: Scrubbed | None  # None: erased before (idempotent repeat)


class PrivacyConsent:
    def __init__(self, store: PrivacyStore, cache: ResponseCache, notifier: PrivacyNotifier, clock: Clock) -> None:
        self.store, self.cache, self.notifier, self.clock = store, cache, notifier, clock

    async def state(self, driver_id: str) -> PrivacyState | None:
        return await self.store.state(driver_id)

    async def set_mode(self, driver_id: str, mode: str, actor: Actor) -> PrivacyState | None:
        """The state after the change (unchanged when it was the mode already); None for an unknown driver.
        Raises PrivacyRefused (→ 409/422) when the change is not allowed."""
        state = await self.store.state(driver_id)
        if state is None:
            return None
        event = privacy.change_mode(state, mode, actor.user_id, actor.role, self.clock.now_ms())
        return state if event is None else await self._changed(await self.store.record(state, event))

    async def mark_private(self, trip_id: uuid.UUID, owner_must_be: str, actor: Actor) -> PrivacyState | None:
        """Withhold the trip's positions; None for an unknown trip or one of another driver."""
        owner = await self.store.trip_owner(trip_id)
        if owner is None or owner != owner_must_be:
            return None
        state = await self.store.state(owner)
        if state is None:
            return None
        event = privacy.mark_trip_private(state, trip_id, actor.user_id, actor.role, self.clock.now_ms())
        return state if event is None else await self._changed(await self.store.record(state, event))

    async def erase(self, driver_id: str, reason: str, actor: Actor) -> Erasure | None:
        """Erase the driver's personal data once (a repeat answers the recorded state); None for an unknown driver."""
        state = await self.store.state(driver_id)
        if state is None:
            return None
        if state.erased:
            return Erasure(state, None)
        now_ms = self.clock.now_ms()

        def event(s: Scrubbed):
            erased = privacy.erase(state, actor.user_id, reason, now_ms, s.readings, s.events)
            assert erased is not None  # not erased: checked above
            return erased

        scrubbed = await self.store.erase(state, privacy.pseudonym(driver_id), event)
        await self.notifier.forget_live(driver_id)
        new = await self.store.state(driver_id)
        assert new is not None
        return Erasure(await self._changed(new), scrubbed)

    async def _changed(self, state: PrivacyState) -> PrivacyState:
        await self.notifier.privacy_changed(state)
        await self.cache.invalidate([state.driver_id])
        return state
