"""The ScoreStore contract: plain test functions over a `new_backend` fixture (an async factory of a fresh,
empty `ScoreBackend`), run against the InMemoryScoreStore fake in the unit suite
(tests/unit/test_score_store_contract.py) and against PostgreSQL in the integration suite
(tests/integration/test_score_store_postgres.py). STYLE.md habit 6.

It ends with the deterministic-history check of docs/SCORING.md: the same trips, submitted in other orders and
splits, with crashes (a lost pending set) and an unavailable model in between, store the same history.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

import pytest

from domain.batches import NewEvent
from domain.pricing import DEFAULT_RULES
from domain.risk_assessment import FactorContribution, RiskAssessment
from domain.scoring import UNKNOWN_SEQ, EndedTrip, risk_stream_id, score_driver_trips
from domain.trip_summary import TripSummary
from storage.memory.risk_model import FakeRiskModel
from storage.memory.score_store import RecordingScorePublisher
from usecases.ports.clock import FakeClock
from usecases.ports.score_store import ScoreStore, StalePolicy, TripSpan
from usecases.scoring import Scorer
from usecases.scoring_round import ScoringRound
from usecases.scoring_schedule import ScheduleRules

T0_MS = 1_780_000_000_000  # 2026-05-28T20:26:40Z, device time
HOUR_MS = 3_600_000
WINDOW_DAYS = 365.0
NS = uuid.UUID("6f1d2c3b-4a59-4e8f-9a7b-0c1d2e3f4a5b")


@dataclass(frozen=True)
class History:
    """What a run stored, comparable across runs: score rows (without recorded_at), risk events, policies."""

    scores: list[tuple]
    events: list[tuple]
    policies: dict[uuid.UUID, tuple]


class ScoreBackend(Protocol):
    store: ScoreStore

    async def add_trips(self, trips: Sequence[TripSummary], seqs: Mapping[uuid.UUID, int] | None = None) -> None:
        """Store trips (and, for `seqs`, a last reading at the trip's end with that offset)."""
        ...

    async def add_policy(
        self,
        policy_id: uuid.UUID,
        driver_id: str,
        premium: Decimal,
        *,
        status: str = "active",
        effective_date: dt.date = dt.date(2026, 1, 1),
        policy_number: str | None = None,
    ) -> None: ...

    async def set_premium(self, policy_id: uuid.UUID, premium: Decimal) -> None:
        """An admin edit."""
        ...

    async def append_foreign(self, event: NewEvent) -> None:
        """Another writer's event, through the event store."""
        ...

    async def history(self) -> History: ...


NewBackend = Callable[[], Awaitable[ScoreBackend]]


# -- builders ---------------------------------------------------------------------------------------------


def trip(driver_id: str, n: int, end_ms: int, *, harsh: int = 0, km: float = 12.0) -> TripSummary:
    return TripSummary(
        trip_id=uuid.uuid5(NS, f"{driver_id}/{n}"),
        driver_id=driver_id,
        start_ms=end_ms - 1_800_000,
        end_ms=end_ms,
        distance_m=km * 1000.0,
        duration_s=1_800.0,
        avg_speed_kmh=24.0,
        max_speed_kmh=64.0,
        harsh_braking_count=harsh,
        night_s=float(60 * n),
    )


def policy_id(driver_id: str, n: int = 0) -> uuid.UUID:
    return uuid.uuid5(NS, f"policy/{driver_id}/{n}")


def ended(t: TripSummary, seq: int = UNKNOWN_SEQ) -> EndedTrip:
    return EndedTrip(t.driver_id, t.trip_id, t.end_ms, seq)


def assessment(driver_id: str, score: float, version: str = "v1") -> RiskAssessment:
    return RiskAssessment(
        driver_id=driver_id, model_version=version, feature_hash=f"{score:08.3f}", score=score,
        band="C", rate=0.08, model_rate=0.09, prior_rate=0.07, credibility=0.5,
        top_factors=(FactorContribution("night_share", 0.12),),
    )  # fmt: skip


async def outcomes_for(store: ScoreStore, trips: Sequence[TripSummary], scores: Sequence[float]) -> list:
    """One driver's outcomes, premium chained from its active policy as the store loads it."""
    driver = trips[0].driver_id
    inputs = await store.load_inputs([TripSpan(driver, trips[0].end_ms - 1, trips[-1].end_ms)])
    chain = [(ended(t), assessment(driver, s), 9_000.0) for t, s in zip(trips, scores, strict=True)]
    return score_driver_trips(chain, inputs.policies.get(driver), DEFAULT_RULES)


# -- the port, call by call ----------------------------------------------------------------------------------


async def test_unscored_trips_come_oldest_first_per_driver_and_scored_ones_drop_out(new_backend: NewBackend):
    b = await new_backend()
    a = [trip("a", 3, T0_MS + 3 * HOUR_MS), trip("a", 1, T0_MS + HOUR_MS), trip("a", 2, T0_MS + 2 * HOUR_MS)]
    await b.add_trips([*a, trip("b", 1, T0_MS)])
    found = await b.store.unscored_trips(["a", "nobody"], limit_per_driver=10)
    assert found == {"a": [ended(t) for t in sorted(a, key=lambda t: t.end_ms)], "nobody": []}
    assert (await b.store.unscored_trips(["a"], limit_per_driver=2))["a"] == [ended(a[1]), ended(a[2])]
    await b.store.write_scores(await outcomes_for(b.store, [a[1]], [40.0]))
    assert (await b.store.unscored_trips(["a"], limit_per_driver=10))["a"] == [ended(a[2]), ended(a[0])]


async def test_trips_ending_at_the_same_time_are_ordered_by_trip_id(new_backend: NewBackend):
    b = await new_backend()
    same = [trip("a", n, T0_MS) for n in range(5)]
    await b.add_trips(same)
    found = (await b.store.unscored_trips(["a"], 10))["a"]
    assert [t.trip_id for t in found] == sorted(t.trip_id for t in same)
    assert [t.trip_id for t in await b.store.oldest_unscored_trips(10)] == sorted(t.trip_id for t in same)


async def test_catch_up_finds_every_unscored_trip_of_any_age_oldest_first_bounded(new_backend: NewBackend):
    b = await new_backend()
    old = trip("a", 1, T0_MS - 800 * 24 * HOUR_MS)  # older than any window
    trips = [old, trip("a", 2, T0_MS), trip("b", 1, T0_MS + HOUR_MS), trip("c", 1, T0_MS - HOUR_MS)]
    await b.add_trips(trips)
    assert await b.store.oldest_unscored_trips(10) == [ended(t) for t in sorted(trips, key=lambda t: t.end_ms)]
    assert await b.store.oldest_unscored_trips(2) == [ended(old), ended(trips[3])]
    await b.store.write_scores(await outcomes_for(b.store, [old], [10.0]))
    assert await b.store.oldest_unscored_trips(1) == [ended(trips[3])]


async def test_trip_seqs_are_the_offsets_of_the_trips_last_readings(new_backend: NewBackend):
    b = await new_backend()
    with_reading, without = trip("a", 1, T0_MS), trip("a", 2, T0_MS + HOUR_MS)
    await b.add_trips([with_reading, without], seqs={with_reading.trip_id: 4211})
    seqs = await b.store.trip_seqs([ended(with_reading), ended(without), ended(trip("zz", 9, T0_MS))])
    assert seqs == {with_reading.trip_id: 4211, without.trip_id: UNKNOWN_SEQ}


async def test_inputs_are_the_span_trips_in_start_order_and_the_active_policy(new_backend: NewBackend):
    b = await new_backend()
    trips = [trip("a", n, T0_MS + n * HOUR_MS) for n in range(1, 5)]
    await b.add_trips([*reversed(trips), trip("b", 1, T0_MS + 2 * HOUR_MS)])
    await b.add_policy(policy_id("a", 1), "a", Decimal("500.00"), effective_date=dt.date(2026, 1, 1))
    await b.add_policy(policy_id("a", 2), "a", Decimal("650.00"), effective_date=dt.date(2026, 3, 1))
    cancelled = dt.date(2026, 6, 1)
    await b.add_policy(policy_id("a", 3), "a", Decimal("900.00"), effective_date=cancelled, status="cancelled")
    inputs = await b.store.load_inputs([TripSpan("a", trips[0].end_ms, trips[2].end_ms), TripSpan("b", 0, 1)])
    assert [t.trip_id for t in inputs.trips["a"]] == [trips[1].trip_id, trips[2].trip_id]  # (from, to]
    assert inputs.trips["a"][0] == trips[1] and inputs.trips["b"] == []
    assert inputs.policies["a"].policy_id == policy_id("a", 2) and inputs.policies["a"].current_premium == 650
    assert "b" not in inputs.policies
    with pytest.raises(ValueError):
        await b.store.load_inputs([TripSpan("a", 0, 1), TripSpan("a", 1, 2)])


async def test_several_trips_of_a_driver_are_stored_in_order_and_the_policy_ends_at_the_last_quote(
    new_backend: NewBackend,
):
    b = await new_backend()
    trips = [trip("a", n, T0_MS + n * HOUR_MS) for n in range(1, 4)]
    await b.add_trips(trips)
    await b.add_policy(policy_id("a"), "a", Decimal("600.00"))
    outcomes = await outcomes_for(b.store, trips, [20.0, 70.0, 95.0])
    result = await b.store.write_scores(outcomes)
    assert (result.scores_inserted, result.events_inserted, result.policies_updated) == (3, 6, 1)
    events = [e for o in outcomes for e in o.events()]
    assert [result.stored[e.event_id].stream_version for e in events] == [1, 2, 3, 4, 5, 6]
    quotes = [o.premium_quoted for o in outcomes]
    assert quotes[0].previous_premium == Decimal("600.00")
    assert [q.previous_premium for q in quotes[1:]] == [q.premium for q in quotes[:-1]]
    history = await b.history()
    assert history.policies[policy_id("a")][0] == quotes[-1].premium
    assert [e[1] for e in history.events] == [1, 2, 3, 4, 5, 6]
    assert len(history.scores) == 3


async def test_a_write_repeated_stores_nothing_and_returns_what_is_stored(new_backend: NewBackend):
    b = await new_backend()
    trips = [trip("a", 1, T0_MS), trip("a", 2, T0_MS + HOUR_MS)]
    await b.add_trips(trips)
    await b.add_policy(policy_id("a"), "a", Decimal("600.00"))
    outcomes = await outcomes_for(b.store, trips, [30.0, 60.0])
    first = await b.store.write_scores(outcomes)
    before = await b.history()
    again = await b.store.write_scores(outcomes)
    assert (again.scores_inserted, again.events_inserted, again.policies_updated) == (0, 0, 0)
    assert again.stored == first.stored
    assert await b.history() == before


async def test_a_policy_edited_after_loading_makes_the_write_stale_and_store_nothing(new_backend: NewBackend):
    b = await new_backend()
    trips = [trip("a", 1, T0_MS), trip("a", 2, T0_MS + HOUR_MS)]
    await b.add_trips(trips)
    await b.add_policy(policy_id("a"), "a", Decimal("600.00"))
    outcomes = await outcomes_for(b.store, trips, [30.0, 60.0])
    await b.set_premium(policy_id("a"), Decimal("700.00"))
    with pytest.raises(StalePolicy):
        await b.store.write_scores(outcomes)
    history = await b.history()
    assert (history.scores, history.events) == ([], [])
    assert history.policies[policy_id("a")][0] == Decimal("700.00")
    fresh = await outcomes_for(b.store, trips, [30.0, 60.0])
    assert (await b.store.write_scores(fresh)).scores_inserted == 2


async def test_risk_events_continue_after_the_streams_head(new_backend: NewBackend):
    b = await new_backend()
    t = trip("a", 1, T0_MS)
    await b.add_trips([t])
    other = NewEvent(uuid.uuid5(NS, "other"), risk_stream_id("a"), 1, "risk_scored", T0_MS - 1, b"{}", UNKNOWN_SEQ)
    await b.append_foreign(other)
    result = await b.store.write_scores(await outcomes_for(b.store, [t], [50.0]))
    assert [e.stream_version for e in result.stored.values()] == [2]


async def test_outcomes_out_of_trip_order_are_refused(new_backend: NewBackend):
    b = await new_backend()
    trips = [trip("a", 1, T0_MS), trip("a", 2, T0_MS + HOUR_MS)]
    await b.add_trips(trips)
    outcomes = await outcomes_for(b.store, trips, [30.0, 60.0])
    with pytest.raises(ValueError):
        await b.store.write_scores(list(reversed(outcomes)))
    assert (await b.history()).scores == []


# -- the deterministic history ----------------------------------------------------------------------------


def fleet() -> tuple[list[list[TripSummary]], set[str]]:
    """Three stages of committed trips (per driver in end order across stages); drivers a and b have policies.
    a has two trips ending at the same time; c has none."""
    a = [trip("a", n, T0_MS + n * HOUR_MS, harsh=n % 3, km=8.0 + n) for n in range(1, 6)]
    a.append(trip("a", 9, a[-1].end_ms, harsh=4))  # same end as a5
    b = [trip("b", n, T0_MS + n * 90 * 60_000, harsh=2 * n) for n in range(1, 5)]
    c = [trip("c", n, T0_MS + n * 2 * HOUR_MS, km=30.0) for n in range(1, 4)]
    stages = [[*a[:2], *b[:1], *c[:1]], [*a[2:4], *b[1:3]], [*a[4:], *b[3:], *c[1:]]]
    return stages, {"a", "b"}


async def _seed_policies(b: ScoreBackend, drivers: set[str]) -> None:
    for driver in sorted(drivers):
        await b.add_policy(policy_id(driver), driver, Decimal("600.00"))


def _scorer(b: ScoreBackend, clock: FakeClock, model: FakeRiskModel, publisher: RecordingScorePublisher) -> Scorer:
    scoring = ScoringRound(b.store, model, publisher, WINDOW_DAYS, clock=clock, max_trips=3, max_trips_per_driver=2)
    rules = ScheduleRules(flush_interval_s=1.0, batch_size=100, catchup_every_s=60.0, catchup_batch=2)
    return Scorer(scoring, clock, rules)


async def _drain(scorer: Scorer, clock: FakeClock, max_steps: int = 500) -> None:
    """Step until nothing is pending or due (the next thing is the periodic catch-up)."""
    for _ in range(max_steps):
        stepped = await scorer.step()
        if stepped.kind != "wait":
            continue
        if not scorer.schedule.pending and not scorer.schedule.more_unscored:
            return
        clock.advance(max(0.001, stepped.wait_until_s - clock.monotonic_s()))
    raise AssertionError("the scorer did not settle")


async def _fault_free(b: ScoreBackend) -> History:
    stages, policies = fleet()
    await _seed_policies(b, policies)
    clock, publisher = FakeClock(), RecordingScorePublisher()
    scorer = _scorer(b, clock, FakeRiskModel(), publisher)
    await _drain(scorer, clock)  # the start's catch-up: nothing yet
    for stage in stages:
        await b.add_trips(stage)
        scorer.submit([ended(t, seq=i) for i, t in enumerate(stage)])
        await _drain(scorer, clock)
    scored = [s.trip.trip_id for s in publisher.trips]
    assert len(scored) == len(set(scored)) == sum(len(s) for s in stages), "every trip published once"
    return await b.history()


async def _with_crashes(b: ScoreBackend) -> History:
    """Later trips submitted first, earlier submissions lost, a crash with a pending set, the model away."""
    stages, policies = fleet()
    await _seed_policies(b, policies)
    clock, model = FakeClock(), FakeRiskModel()
    scorer = _scorer(b, clock, model, RecordingScorePublisher())
    await _drain(scorer, clock)
    await b.add_trips(stages[0])
    await b.add_trips(stages[1])
    # only the newest trip of each driver is submitted, in reverse order; the rest was lost
    latest = {t.driver_id: t for t in [*stages[0], *stages[1]]}
    scorer.submit([ended(t) for t in reversed(list(latest.values()))])
    model.available = False
    for _ in range(3):  # rounds fail: backoff 1, 2, 4 s
        clock.advance(10.0)
        assert (await scorer.step()).failure == "risk_model_unavailable"
    assert scorer.schedule.backoff_s == 4.0
    # crash: the pending set is gone; a new scorer over the same store starts with a catch-up
    model.available = True
    scorer = _scorer(b, clock, model, RecordingScorePublisher())
    first = await scorer.step()
    assert first.kind == "catchup" and first.found == 2  # a full page: it looks again once drained
    clock.advance(1.0)
    stepped = await scorer.step()
    assert stepped.kind == "round" and stepped.result is not None and stepped.result.more  # bounded round
    # crash again mid-way; the last stage arrives split in two submissions, in reverse order
    scorer = _scorer(b, clock, model, RecordingScorePublisher())
    await b.add_trips(stages[2])
    scorer.submit([ended(t) for t in reversed(stages[2][3:])])
    scorer.submit([ended(t) for t in reversed(stages[2][:3])])
    await _drain(scorer, clock)
    return await b.history()


async def test_crashes_and_submission_orders_do_not_change_the_stored_history(new_backend: NewBackend):
    fault_free = await _fault_free(await new_backend())
    crashed = await _with_crashes(await new_backend())
    stages, _ = fleet()
    total = sum(len(s) for s in stages)
    assert len(fault_free.scores) == total and len({s[-1] for s in fault_free.scores}) == total, "one score a trip"
    assert len(fault_free.events) == total + sum(1 for s in stages for t in s if t.driver_id in {"a", "b"})
    assert crashed == fault_free


async def test_a_round_never_scores_a_trip_before_an_earlier_unscored_one(new_backend: NewBackend):
    b = await new_backend()
    trips = [trip("a", n, T0_MS + n * HOUR_MS) for n in range(1, 4)]
    await b.add_trips(trips)
    await b.add_policy(policy_id("a"), "a", Decimal("600.00"))
    publisher = RecordingScorePublisher()
    scoring = ScoringRound(b.store, FakeRiskModel(), publisher, WINDOW_DAYS, clock=FakeClock())
    result = await scoring.score(["a"], {trips[2].trip_id: ended(trips[2], seq=77)})  # only the last submitted
    assert result.scored == 3 and result.more == ()
    assert [s.trip.trip_id for s in publisher.trips] == [t.trip_id for t in trips]
    assert publisher.trips[-1].trip.seq == 77
    history = await b.history()
    premiums = [e[4] for e in history.events if e[3] == "premium_quoted"]
    assert len(premiums) == 3
