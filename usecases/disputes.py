"""Disputes and the premium ledger, the use case: a driver disputes an episode of their trip, an admin decides,
an accepted dispute re-scores the driver and reprices their policy within the caps (issue 16 item 2).

A handler over the DisputeStore and RiskModel ports and a clock; the rules are domain/disputes.py. Errors:
DisputeRefused (422: not disputable, empty reason or note), DisputeConflict (409: disputed or decided already),
DisputeNotFound (404: unknown trip, episode or dispute, or one the caller may not see). A write that raced the
scorer (ConcurrencyConflict on the risk stream, StalePolicy) is recomputed, up to `ATTEMPTS` times.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from domain.disputes import DisputeConflict, DisputeRefused, apply_adjustment, decided, opened, rescored
from domain.events import DisputeRescored
from domain.features import driver_features
from domain.premium_ledger import LedgerEntry
from domain.pricing import DEFAULT_RULES, PricingRules
from domain.risk_assessment import ScoreRequest
from domain.scoring import window_trips
from domain.trip_summary import TripSummary
from storage.event_store_contract import ConcurrencyConflict
from usecases.ports.cache import ResponseCache
from usecases.ports.clock import Clock
from usecases.ports.dispute_store import DisputeRecord, DisputeStore
from usecases.ports.risk_model import RiskModel
from usecases.ports.score_store import StalePolicy

ATTEMPTS = 3
STATUSES = ("open", "accepted", "rejected")


class DisputeNotFound(LookupError):
    """Unknown, or not the caller's: the same answer, so ids cannot be probed."""


@dataclass(frozen=True, slots=True)
class DisputeTerms:
    """The scoring window (days), the pricing rules and the rules version in force (config.rules.rules_in_force)."""

    window_days: float
    rules_version: str
    rules: PricingRules = DEFAULT_RULES


@dataclass
class Disputes:
    store: DisputeStore
    model: RiskModel
    cache: ResponseCache
    clock: Clock
    terms: DisputeTerms

    async def open(self, *, trip_id: uuid.UUID, episode_id: uuid.UUID, reason: str, user_id: str,
                   may_read: Callable[[str], bool]) -> DisputeRecord:
        """File a dispute of one episode of the caller's trip. Only the trip's driver may (an admin reads trips
        but does not dispute for a driver)."""
        found = await self.store.trip_episode(trip_id, episode_id)
        if found is None or not may_read(found[0]):
            raise DisputeNotFound(f"trip {trip_id} not found")
        driver_id, episode = found
        if episode is None:
            raise DisputeNotFound(f"episode {episode_id} of trip {trip_id} not found")
        event = opened(driver_id=driver_id, trip_id=trip_id, episode=episode, reason=reason, opened_by=user_id,
                       at_ms=self.clock.now_ms())
        for _ in range(ATTEMPTS):
            try:
                if not await self.store.open(event):
                    raise DisputeConflict(f"episode {episode_id} is disputed already (dispute {event.dispute_id})")
                return DisputeRecord(event, "open")
            except ConcurrencyConflict:
                continue
        raise DisputeConflict(f"the risk stream of {driver_id} kept moving while filing; retry")

    async def get(self, dispute_id: uuid.UUID, may_read: Callable[[str], bool]) -> DisputeRecord:
        record = await self.store.get(dispute_id)
        if record is None or not may_read(record.opened.driver_id):
            raise DisputeNotFound(f"dispute {dispute_id} not found")
        return record

    async def page(self, driver_id: str | None, status: str | None, page: int, page_size: int
                   ) -> tuple[int, list[DisputeRecord]]:
        if status is not None and status not in STATUSES:
            raise DisputeRefused(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
        return await self.store.page(driver_id, status, page_size, (page - 1) * page_size)

    async def decide(self, dispute_id: uuid.UUID, *, accept: bool, note: str, user_id: str) -> DisputeRecord:
        """Accept or reject an open dispute. Accepting removes the episode from its trip and re-scores the driver
        over the window of their latest score with the model in force; the policy moves within the caps."""
        record = await self.store.get(dispute_id)
        if record is None:
            raise DisputeNotFound(f"dispute {dispute_id} not found")
        for _ in range(ATTEMPTS):
            if record.status != "open":
                raise DisputeConflict(f"dispute {dispute_id} is {record.status} already")
            now_ms = self.clock.now_ms()
            decision = decided(record.opened, accept=accept, note=note, decided_by=user_id, at_ms=now_ms)
            rescore, adjusted = (await self._rescore(record, now_ms)) if accept else (None, None)
            try:
                if await self.store.decide(decision, rescore, adjusted):
                    await self.cache.invalidate([record.opened.driver_id])
                    return DisputeRecord(record.opened, decision.decision, decision.note, user_id, now_ms)
            except (ConcurrencyConflict, StalePolicy):
                pass
            record = await self.store.get(dispute_id) or record
        raise DisputeConflict(f"dispute {dispute_id}: the driver's scores kept moving while deciding; retry")

    async def _rescore(self, record: DisputeRecord, now_ms: int
                       ) -> tuple[DisputeRescored | None, TripSummary | None]:
        dispute = record.opened
        inputs = await self.store.rescore_inputs(dispute.driver_id, dispute.trip_id, self.terms.window_days)
        adjusted = None if inputs.disputed is None else apply_adjustment(inputs.disputed, dispute.adjustment)
        if inputs.window_end_ms is None:  # never scored: the scorer will score the adjusted trip
            return None, adjusted
        trips = [adjusted if t.trip_id == dispute.trip_id and adjusted is not None else t for t in inputs.trips]
        features = driver_features(window_trips(trips, inputs.window_end_ms, self.terms.window_days),
                                   self.terms.window_days)
        request = ScoreRequest(driver_id=dispute.driver_id, features=tuple(features.to_vector().tolist()))
        assessment = await self.model.assess(request)
        event = rescored(dispute, assessment=assessment, features=features, window_end_ms=inputs.window_end_ms,
                         policy=inputs.policy, rules=self.terms.rules, rules_version=self.terms.rules_version,
                         at_ms=now_ms)
        return event, adjusted

    async def ledger(self, driver_id: str, page: int, page_size: int) -> tuple[int, list[LedgerEntry]]:
        return await self.store.ledger(driver_id, page_size, (page - 1) * page_size)
