"""InMemoryDisputeStore: the DisputeStore port as dicts, for the use case's unit tests. Passes the contract
tests/contracts/dispute_store_contract.py like storage/postgres/disputes.py; the ledger is the same fold."""

from __future__ import annotations

import uuid

import msgspec

from domain.events import DisputeDecided, DisputeOpened, DisputeRescored, DomainEvent
from domain.premium_ledger import LedgerEntry, LedgerState, fold_ledger
from domain.scoring import PolicyTerms, window_start_ms
from domain.trip_summary import TripSummary
from usecases.ports.dispute_store import DisputeRecord, RescoreInputs
from usecases.ports.score_store import StalePolicy


class InMemoryDisputeStore:
    def __init__(self) -> None:
        self.trips: dict[uuid.UUID, TripSummary] = {}
        self.episodes: dict[uuid.UUID, DomainEvent] = {}
        self.policies: dict[str, PolicyTerms] = {}
        self.score_ends: dict[str, list[int]] = {}  # driver → scored_at of its scores, in write order
        self.records: dict[uuid.UUID, DisputeRecord] = {}
        self.streams: dict[str, list[DomainEvent]] = {}
        self.entries: dict[str, list[LedgerEntry]] = {}

    # -- arranging (tests) --------------------------------------------------------------------------------
    def add_trip(self, summary: TripSummary, episodes: list[DomainEvent]) -> None:
        self.trips[summary.trip_id] = summary
        self.episodes.update({e.event_id: e for e in episodes})

    def add_policy(self, driver_id: str, policy: PolicyTerms) -> None:
        self.policies[driver_id] = policy

    def add_score(self, driver_id: str, scored_at_ms: int) -> None:
        self.score_ends.setdefault(driver_id, []).append(scored_at_ms)

    # -- the port -----------------------------------------------------------------------------------------
    async def trip_episode(self, trip_id: uuid.UUID, episode_id: uuid.UUID) -> tuple[str, DomainEvent | None] | None:
        trip = self.trips.get(trip_id)
        if trip is None:
            return None
        episode = self.episodes.get(episode_id)
        return trip.driver_id, episode if episode is not None and episode.trip_id == trip_id else None

    async def open(self, event: DisputeOpened) -> bool:
        if event.dispute_id in self.records:
            return False
        self.records[event.dispute_id] = DisputeRecord(event, "open")
        self.streams.setdefault(event.driver_id, []).append(event)
        return True

    async def get(self, dispute_id: uuid.UUID) -> DisputeRecord | None:
        return self.records.get(dispute_id)

    async def page(self, driver_id: str | None, status: str | None, limit: int, offset: int
                   ) -> tuple[int, list[DisputeRecord]]:
        chosen = [r for r in self.records.values() if driver_id in (None, r.opened.driver_id)
                  and status in (None, r.status)]
        chosen.sort(key=lambda r: (-r.opened.occurred_at_ms, r.opened.dispute_id))
        return len(chosen), chosen[offset:offset + limit]

    async def rescore_inputs(self, driver_id: str, trip_id: uuid.UUID, window_days: float) -> RescoreInputs:
        ends = self.score_ends.get(driver_id)
        end = max(ends) if ends else None
        trips = [] if end is None else sorted(
            (t for t in self.trips.values() if t.driver_id == driver_id
             and window_start_ms(end, window_days) < t.end_ms <= end), key=lambda t: (t.start_ms, t.trip_id))
        return RescoreInputs(self.trips.get(trip_id), end, trips, self.policies.get(driver_id))

    async def decide(self, decided: DisputeDecided, rescored: DisputeRescored | None,
                     adjusted_trip: TripSummary | None) -> bool:
        record = self.records.get(decided.dispute_id)
        if record is None or record.status != "open":
            return False
        policy = self.policies.get(decided.driver_id)
        if rescored is not None and rescored.policy_id is not None:
            held = None if policy is None or policy.current_premium <= 0 else policy.current_premium
            if policy is None or policy.policy_id != rescored.policy_id or held != rescored.previous_premium:
                raise StalePolicy(f"the policy of {decided.driver_id} changed while re-scoring")
        stream = self.streams.setdefault(decided.driver_id, [])
        fresh = [decided] if rescored is None else [decided, rescored]
        first_version = len(stream) + 1
        stream.extend(fresh)
        self.records[decided.dispute_id] = DisputeRecord(record.opened, decided.decision, decided.note,
                                                         decided.decided_by, decided.occurred_at_ms)
        if adjusted_trip is not None:
            self.trips[adjusted_trip.trip_id] = adjusted_trip
        if rescored is not None:
            self.add_score(decided.driver_id, rescored.window_end_ms)
            if policy is not None and rescored.premium is not None:
                self.policies[decided.driver_id] = msgspec.structs.replace(policy, current_premium=rescored.premium)
            held = self.entries.setdefault(decided.driver_id, [])
            state = LedgerState(last_model_version=held[-1].model_version if held else None)
            held += fold_ledger(state, list(enumerate(fresh, start=first_version)))[1]
        return True

    async def ledger(self, driver_id: str, limit: int, offset: int) -> tuple[int, list[LedgerEntry]]:
        entries = list(reversed(self.entries.get(driver_id, [])))
        return len(entries), entries[offset:offset + limit]
