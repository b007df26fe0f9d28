"""The dispute use case (usecases/disputes.py) over the in-memory store, a fake model and a fake clock: who may
file, what accepting does, and how a decision that raced the scorer is recomputed."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from domain.disputes import DisputeConflict, DisputeRefused
from domain.events import HarshBrakingDetected
from domain.scoring import PolicyTerms
from domain.trip_summary import TripSummary
from storage.event_store_contract import ConcurrencyConflict
from storage.memory.cache import InMemoryResponseCache
from storage.memory.dispute_store import InMemoryDisputeStore
from storage.memory.risk_model import FakeRiskModel
from usecases.disputes import DisputeNotFound, Disputes, DisputeTerms
from usecases.ports.clock import FakeClock
from usecases.ports.score_store import StalePolicy

DRIVER = "d1"


def _world(store_class=InMemoryDisputeStore):
    store = store_class()
    trip = TripSummary(trip_id=uuid.uuid4(), driver_id=DRIVER, start_ms=1_000_000, end_ms=4_600_000,
                       distance_m=20_000.0, duration_s=3600.0, avg_speed_kmh=20.0, max_speed_kmh=80.0,
                       harsh_braking_count=2, harsh_braking_high_count=1)
    episode = HarshBrakingDetected(event_id=uuid.uuid4(), driver_id=DRIVER, trip_id=trip.trip_id,
                                   occurred_at_ms=1_100_000, peak_mps2=4.5, duration_s=2.0, speed_at_start_kmh=60.0,
                                   start_ms=1_100_000, end_ms=1_102_000, lat=45.0, lon=7.0, grade="high")
    store.add_trip(trip, [episode])
    store.add_policy(DRIVER, PolicyTerms(policy_id=uuid.uuid4(), base_premium=Decimal("600.00"),
                                         current_premium=Decimal("700.00"), per_km_rate=Decimal("0.02"),
                                         currency="EUR"))
    store.add_score(DRIVER, trip.end_ms)
    cache = InMemoryResponseCache()
    disputes = Disputes(store, FakeRiskModel(model_version="m-2"), cache, FakeClock(now_ms=9_000_000),
                        DisputeTerms(window_days=30.0, rules_version="rules-test"))
    return disputes, store, trip, episode, cache


def _mine(driver_id: str) -> bool:
    return driver_id == DRIVER


async def test_accepting_removes_the_episode_rescores_with_the_model_in_force_and_reprices_within_the_cap():
    disputes, store, trip, episode, cache = _world()
    record = await disputes.open(trip_id=trip.trip_id, episode_id=episode.event_id, reason="a deer",
                                 user_id="u1", may_read=_mine)
    cache.entries[(DRIVER, "score")] = b"{}"
    decided = await disputes.decide(record.opened.dispute_id, accept=True, note="ok", user_id="admin")
    assert (decided.status, decided.decided_at_ms) == ("accepted", 9_000_000)
    assert store.trips[trip.trip_id].harsh_braking_count == 1
    [entry] = store.entries[DRIVER]
    assert (entry.cause, entry.model_version, entry.rules_version) == ("dispute", "m-2", "rules-test")
    assert entry.previous_premium == Decimal("700.00")
    assert abs(entry.premium - Decimal("700.00")) <= Decimal("105.00")
    assert store.policies[DRIVER].current_premium == entry.premium
    assert (DRIVER, "score") not in cache.entries  # every replica's cached score and quote are dropped


async def test_another_drivers_trip_an_unknown_episode_and_a_second_filing_are_refused():
    disputes, _store, trip, episode, _cache = _world()
    with pytest.raises(DisputeNotFound, match="trip"):
        await disputes.open(trip_id=trip.trip_id, episode_id=episode.event_id, reason="x", user_id="u2",
                            may_read=lambda d: d == "d2")
    with pytest.raises(DisputeNotFound, match="episode"):
        await disputes.open(trip_id=trip.trip_id, episode_id=uuid.uuid4(), reason="x", user_id="u1", may_read=_mine)
    await disputes.open(trip_id=trip.trip_id, episode_id=episode.event_id, reason="x", user_id="u1", may_read=_mine)
    with pytest.raises(DisputeConflict, match="disputed already"):
        await disputes.open(trip_id=trip.trip_id, episode_id=episode.event_id, reason="y", user_id="u1",
                            may_read=_mine)
    with pytest.raises(DisputeRefused, match="status must be one of"):
        await disputes.page(None, "closed", 1, 20)


async def test_a_rejection_changes_no_premium_and_a_second_decision_is_a_conflict():
    disputes, store, trip, episode, _cache = _world()
    record = await disputes.open(trip_id=trip.trip_id, episode_id=episode.event_id, reason="x", user_id="u1",
                                 may_read=_mine)
    await disputes.decide(record.opened.dispute_id, accept=False, note="no", user_id="admin")
    assert store.entries.get(DRIVER, []) == [] and store.trips[trip.trip_id] == trip
    with pytest.raises(DisputeConflict, match="rejected already"):
        await disputes.decide(record.opened.dispute_id, accept=True, note="yes", user_id="admin")


class RacingStore(InMemoryDisputeStore):
    """Loses the first write of a decision to a scorer round: the policy moved (StalePolicy), or the stream."""

    def __init__(self, error: type[Exception] = StalePolicy) -> None:
        super().__init__()
        self.error, self.lost = error, 0

    async def decide(self, decided, rescored, adjusted_trip) -> bool:
        if self.lost == 0:
            self.lost += 1
            policy = self.policies[decided.driver_id]
            self.policies[decided.driver_id] = PolicyTerms(
                policy_id=policy.policy_id, base_premium=policy.base_premium, current_premium=Decimal("650.00"),
                per_km_rate=policy.per_km_rate, currency=policy.currency)
            if self.error is ConcurrencyConflict:
                raise ConcurrencyConflict(f"risk:{decided.driver_id}", 1, 2, "the scorer appended first")
            raise StalePolicy("the scorer moved the policy first")
        return await super().decide(decided, rescored, adjusted_trip)


@pytest.mark.parametrize("error", [StalePolicy, ConcurrencyConflict])
async def test_a_decision_that_lost_the_race_to_the_scorer_is_recomputed_from_the_moved_policy(error):
    disputes, store, trip, episode, _cache = _world(lambda: RacingStore(error))
    record = await disputes.open(trip_id=trip.trip_id, episode_id=episode.event_id, reason="x", user_id="u1",
                                 may_read=_mine)
    await disputes.decide(record.opened.dispute_id, accept=True, note="ok", user_id="admin")
    assert store.lost == 1 and store.entries[DRIVER][0].previous_premium == Decimal("650.00")


async def test_an_unknown_dispute_is_not_found():
    disputes, *_ = _world()
    with pytest.raises(DisputeNotFound):
        await disputes.decide(uuid.uuid4(), accept=True, note="ok", user_id="admin")
    with pytest.raises(DisputeNotFound):
        await disputes.get(uuid.uuid4(), lambda _d: True)
