"""The DisputeStore contract: plain test functions over a `new_backend` fixture (an async factory of a fresh,
empty backend), run against the InMemoryDisputeStore fake (tests/unit/test_dispute_store_contract.py) and
PostgreSQL (tests/integration/test_dispute_store_postgres.py)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Protocol

import pytest

from domain.disputes import apply_adjustment, decided, opened, rescored
from domain.events import DomainEvent, HarshBrakingDetected
from domain.features import driver_features
from domain.pricing import DEFAULT_RULES
from domain.risk_assessment import RiskAssessment
from domain.scoring import PolicyTerms
from domain.trip_summary import TripSummary
from usecases.ports.dispute_store import DisputeStore
from usecases.ports.score_store import StalePolicy

DAY_MS = 86_400_000
T0 = 1_767_225_600_000  # 2026-01-01 UTC


class DisputeBackend(Protocol):
    store: DisputeStore

    async def add_trip(self, summary: TripSummary, episodes: list[DomainEvent]) -> None: ...

    async def add_policy(self, driver_id: str, premium: Decimal) -> PolicyTerms: ...

    async def add_score(self, driver_id: str, scored_at_ms: int) -> None: ...

    async def trip(self, trip_id: uuid.UUID) -> TripSummary: ...

    async def premium(self, driver_id: str) -> Decimal: ...


NewBackend = Callable[[], Awaitable[DisputeBackend]]


def _trip(driver: str, day: int, braking: int = 2) -> TripSummary:
    start = T0 + day * DAY_MS
    return TripSummary(trip_id=uuid.uuid4(), driver_id=driver, start_ms=start, end_ms=start + 3_600_000,
                       distance_m=20_000.0, duration_s=3600.0, avg_speed_kmh=20.0, max_speed_kmh=80.0,
                       harsh_braking_count=braking, harsh_braking_high_count=min(braking, 1))


def _braking(trip: TripSummary, grade: str = "high") -> HarshBrakingDetected:
    at = trip.start_ms + 60_000
    return HarshBrakingDetected(event_id=uuid.uuid4(), driver_id=trip.driver_id, trip_id=trip.trip_id,
                                occurred_at_ms=at, peak_mps2=4.5, duration_s=2.0, speed_at_start_kmh=60.0,
                                start_ms=at, end_ms=at + 2000, lat=45.1, lon=7.1, grade=grade)


async def _arranged(b: DisputeBackend, driver: str = "d1"):
    trip = _trip(driver, 0)
    episode = _braking(trip)
    await b.add_trip(trip, [episode])
    return trip, episode


def _opened(trip, episode, at_ms=T0 + 2 * DAY_MS):
    return opened(driver_id=trip.driver_id, trip_id=trip.trip_id, episode=episode, reason="a child ran out",
                  opened_by="user-1", at_ms=at_ms)


async def test_an_episode_is_found_only_in_its_own_trip(new_backend: NewBackend):
    b = await new_backend()
    trip, episode = await _arranged(b)
    _other, other_episode = await _arranged(b, "d2")
    found = await b.store.trip_episode(trip.trip_id, episode.event_id)
    assert found is not None and found[0] == "d1" and found[1] == episode
    assert await b.store.trip_episode(trip.trip_id, other_episode.event_id) == ("d1", None)
    assert await b.store.trip_episode(uuid.uuid4(), episode.event_id) is None


async def test_a_dispute_opens_once_and_reads_back_as_filed(new_backend: NewBackend):
    b = await new_backend()
    trip, episode = await _arranged(b)
    event = _opened(trip, episode)
    assert await b.store.open(event) is True
    assert await b.store.open(_opened(trip, episode, at_ms=T0 + 3 * DAY_MS)) is False
    record = await b.store.get(event.dispute_id)
    assert record is not None and (record.opened, record.status, record.note) == (event, "open", None)
    assert await b.store.get(uuid.uuid4()) is None


async def test_disputes_page_newest_first_by_driver_and_status(new_backend: NewBackend):
    b = await new_backend()
    events = []
    for day, driver in enumerate(("d1", "d1", "d2")):
        trip = _trip(driver, day)
        episode = _braking(trip)
        await b.add_trip(trip, [episode])
        events.append(_opened(trip, episode, at_ms=T0 + (10 + day) * DAY_MS))
        assert await b.store.open(events[-1])
    total, page = await b.store.page("d1", None, 1, 0)
    assert total == 2 and [r.opened for r in page] == [events[1]]
    assert (await b.store.page(None, "open", 10, 0))[0] == 3
    assert (await b.store.page(None, "accepted", 10, 0)) == (0, [])


async def test_rescore_inputs_are_the_latest_scores_window_and_the_disputed_trip(new_backend: NewBackend):
    b = await new_backend()
    trip, _episode = await _arranged(b)
    later = _trip("d1", 5, braking=0)
    await b.add_trip(later, [])
    policy = await b.add_policy("d1", Decimal("700.00"))
    empty = await b.store.rescore_inputs("d1", trip.trip_id, 30.0)
    assert (empty.disputed, empty.window_end_ms, empty.trips, empty.policy) == (trip, None, [], policy)
    await b.add_score("d1", trip.end_ms)
    await b.add_score("d1", later.end_ms)
    inputs = await b.store.rescore_inputs("d1", trip.trip_id, 30.0)
    assert inputs.window_end_ms == later.end_ms and inputs.trips == [trip, later]
    narrow = await b.store.rescore_inputs("d1", trip.trip_id, 1.0)
    assert narrow.trips == [later] and narrow.disputed == trip


def _rescore(event, policy, score=40.0):
    assessment = RiskAssessment(driver_id=event.driver_id, model_version="m-1", feature_hash="h", score=score,
                                band="C", rate=0.1, model_rate=0.1, prior_rate=0.1, credibility=0.5)
    return rescored(event, assessment=assessment, features=driver_features([], 30), window_end_ms=T0 + DAY_MS,
                    policy=policy, rules=DEFAULT_RULES, rules_version="rules-x", at_ms=T0 + 3 * DAY_MS)


async def _open_scored_and_priced(b: DisputeBackend):
    """A scored trip of d1 with a braking disputed, and d1's policy at 700.00."""
    trip, episode = await _arranged(b)
    policy = await b.add_policy("d1", Decimal("700.00"))
    await b.add_score("d1", trip.end_ms)
    event = _opened(trip, episode)
    await b.store.open(event)
    return trip, policy, event


async def test_an_accepted_decision_writes_the_trip_policy_and_ledger_once(new_backend: NewBackend):
    b = await new_backend()
    trip, policy, event = await _open_scored_and_priced(b)
    decision = decided(event, accept=True, note="dashcam", decided_by="admin-1", at_ms=T0 + 3 * DAY_MS)
    rescore = _rescore(event, policy)
    adjusted = apply_adjustment(trip, event.adjustment)
    assert await b.store.decide(decision, rescore, adjusted) is True
    record = await b.store.get(event.dispute_id)
    assert (record.status, record.note, record.decided_by, record.decided_at_ms) == (
        "accepted", "dashcam", "admin-1", T0 + 3 * DAY_MS)
    assert (await b.trip(trip.trip_id)).harsh_braking_count == 1
    assert await b.premium("d1") == rescore.premium
    total, entries = await b.store.ledger("d1", 10, 0)
    assert total == 1 and (entries[0].cause, entries[0].dispute_id, entries[0].premium) == (
        "dispute", event.dispute_id, rescore.premium)
    assert entries[0].previous_premium == Decimal("700.00")
    assert await b.store.decide(decision, rescore, adjusted) is False  # decided already: nothing again
    assert (await b.store.ledger("d1", 10, 0))[0] == 1


async def test_a_decision_against_a_moved_policy_is_stale_and_writes_nothing(new_backend: NewBackend):
    b = await new_backend()
    trip, policy, event = await _open_scored_and_priced(b)
    moved = PolicyTerms(policy_id=policy.policy_id, base_premium=policy.base_premium,
                        current_premium=Decimal("650.00"), per_km_rate=policy.per_km_rate, currency=policy.currency)
    decision = decided(event, accept=True, note="ok", decided_by="admin-1", at_ms=T0 + 3 * DAY_MS)
    with pytest.raises(StalePolicy):
        await b.store.decide(decision, _rescore(event, moved), apply_adjustment(trip, event.adjustment))
    assert (await b.store.get(event.dispute_id)).status == "open"
    assert (await b.trip(trip.trip_id)).harsh_braking_count == 2
    assert await b.store.ledger("d1", 10, 0) == (0, [])


async def test_a_rejected_decision_changes_nothing_but_the_dispute(new_backend: NewBackend):
    b = await new_backend()
    trip, episode = await _arranged(b)
    await b.add_policy("d1", Decimal("700.00"))
    event = _opened(trip, episode)
    await b.store.open(event)
    assert await b.store.decide(decided(event, accept=False, note="no", decided_by="a", at_ms=T0 + 3 * DAY_MS),
                                None, None)
    assert (await b.store.get(event.dispute_id)).status == "rejected"
    assert (await b.trip(trip.trip_id)) == trip and await b.premium("d1") == Decimal("700.00")
