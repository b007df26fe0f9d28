"""When the scorer scores (usecases/scoring_schedule.py, usecases/scoring.py): rounds, backoff, catch-up, with a
FakeClock, the FakeRiskModel and the in-memory score store — no Ray, no sleeps."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from domain.scoring import UNKNOWN_SEQ, EndedTrip
from storage.memory.risk_model import FakeRiskModel
from storage.memory.score_store import InMemoryScoreStore, PolicyRow, RecordingScorePublisher
from tests.contracts.score_store_contract import HOUR_MS, T0_MS, WINDOW_DAYS, ended, trip
from usecases.ports.clock import FakeClock
from usecases.ports.score_store import StalePolicy
from usecases.scoring import Scorer
from usecases.scoring_round import ScoringRound
from usecases.scoring_schedule import CatchUp, ScheduleRules, ScoreRound, ScoringSchedule, Wait

RULES = ScheduleRules(flush_interval_s=1.0, batch_size=3, catchup_every_s=60.0, catchup_batch=10, max_backoff_s=30.0)


def _trip(driver: str, n: int = 0) -> EndedTrip:
    return EndedTrip(driver, uuid.uuid5(uuid.NAMESPACE_URL, f"{driver}/{n}"), T0_MS + n, n)


def _started(now: float = 0.0, rules: ScheduleRules = RULES) -> ScoringSchedule:
    schedule = ScoringSchedule(rules, now)
    assert schedule.next_action(now) == CatchUp(rules.catchup_batch)
    schedule.catchup_started(now)
    schedule.catchup_done([], now)
    return schedule


def test_a_new_schedule_starts_with_a_catch_up_then_waits_for_the_next_one():
    schedule = _started(0.0)
    assert schedule.next_action(0.0) == Wait(60.0)
    assert schedule.next_action(60.0) == CatchUp(10)


def test_a_round_is_due_a_flush_interval_after_the_first_submission():
    schedule = _started()
    assert schedule.submit([_trip("a")], 5.0) is True  # the first pending driver wakes the loop
    assert schedule.submit([_trip("b")], 5.5) is False
    assert schedule.next_action(5.9) == Wait(6.0)
    action = schedule.next_action(6.0)
    assert isinstance(action, ScoreRound) and action.drivers == ("a", "b")
    work = schedule.take_round(6.0)
    assert work == action and schedule.pending_drivers == 0
    assert schedule.next_action(6.0) == Wait(60.0)


def test_a_full_batch_is_due_at_once():
    schedule = _started()
    schedule.submit([_trip("a"), _trip("b")], 1.0)
    assert schedule.submit([_trip("c")], 1.1) is True
    assert isinstance(schedule.next_action(1.1), ScoreRound)


def test_a_submitted_offset_is_kept_over_an_unknown_one():
    schedule = _started()
    known = _trip("a", 3)
    schedule.submit([known], 0.0)
    schedule.submit([EndedTrip("a", known.trip_id, known.end_ms, UNKNOWN_SEQ)], 0.1)
    assert schedule.take_round(1.0).known == {known.trip_id: known}


def test_failed_rounds_back_off_doubling_to_the_cap_and_keep_their_drivers():
    schedule = _started(rules=ScheduleRules(catchup_every_s=3600.0))
    schedule.submit([_trip("a")], 0.0)
    now, waits = 1.0, []
    for _ in range(7):
        assert isinstance(schedule.next_action(now), ScoreRound)
        waits.append(schedule.round_failed(schedule.take_round(now), now))
        assert schedule.pending_drivers == 1
        assert schedule.next_action(now + waits[-1] - 0.01) == Wait(now + waits[-1])
        now += waits[-1]
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    schedule.round_done(schedule.take_round(now), [], now)
    schedule.submit([_trip("b")], now)
    schedule.round_failed(schedule.take_round(now + 1), now + 1)
    assert schedule.backoff_s == 1.0  # a success resets the backoff


def test_drivers_left_with_more_trips_are_due_again_at_once():
    schedule = _started()
    schedule.submit([_trip("a")], 0.0)
    schedule.round_done(schedule.take_round(1.0), ["a"], 1.0)
    assert isinstance(schedule.next_action(1.0), ScoreRound)


def test_a_full_catch_up_page_looks_again_once_the_pending_drivers_are_drained():
    schedule = _started()
    schedule.catchup_started(0.0)
    schedule.catchup_done([_trip(f"d{n}") for n in range(10)], 0.0)
    assert isinstance(schedule.next_action(0.0), ScoreRound)  # 10 trips ≥ batch
    schedule.round_done(schedule.take_round(0.0), [], 0.0)
    assert schedule.next_action(0.0) == CatchUp(10)


def test_rules_refuse_nonsense():
    with pytest.raises(ValueError):
        ScheduleRules(batch_size=0)
    with pytest.raises(ValueError):
        ScheduleRules(first_backoff_s=5.0, max_backoff_s=1.0)


# -- the scorer over the fakes ----------------------------------------------------------------------------


def _scorer(
    store: InMemoryScoreStore, model: FakeRiskModel, clock: FakeClock
) -> tuple[Scorer, RecordingScorePublisher]:
    publisher = RecordingScorePublisher()
    scoring = ScoringRound(store, model, publisher, WINDOW_DAYS, clock=clock)
    return Scorer(scoring, clock, RULES), publisher


async def test_the_scorer_scores_submitted_trips_after_the_flush_interval():
    store, clock, model = InMemoryScoreStore(), FakeClock(), FakeRiskModel()
    trips = [trip("a", 1, T0_MS), trip("a", 2, T0_MS + HOUR_MS), trip("b", 1, T0_MS)]
    store.add_trips(trips)
    scorer, publisher = _scorer(store, model, clock)
    assert (await scorer.step()).kind == "catchup"
    assert scorer.stats()["catchup_found"] == 3  # committed before the start: the catch-up finds them
    scorer.schedule.pending.clear()  # as if found by nobody: only the submissions below
    assert scorer.submit([ended(trips[1], seq=9)]) is True
    assert (await scorer.step()).kind == "wait"
    clock.advance(1.0)
    stepped = await scorer.step()
    assert stepped.kind == "round" and stepped.result.scored == 2  # a1 too: loaded, not submitted
    assert [s.trip.seq for s in publisher.trips] == [UNKNOWN_SEQ, 9]  # a1: no reading stored in the fake
    assert model.calls == [2]
    stats = scorer.stats()
    assert (stats["rounds"], stats["scored"], stats["scores_inserted"], stats["pending"]) == (1, 2, 2, 0)


async def test_the_scorer_counts_an_unavailable_model_and_scores_once_it_is_back():
    store, clock, model = InMemoryScoreStore(), FakeClock(), FakeRiskModel(available=False)
    store.add_trips([trip("a", 1, T0_MS)])
    scorer, publisher = _scorer(store, model, clock)
    await scorer.step()  # the catch-up finds the trip
    clock.advance(1.0)
    failed = await scorer.step()
    assert (failed.failure, failed.retry_in_s) == ("risk_model_unavailable", 1.0)
    assert scorer.stats()["model_unavailable"] == 1 and "fake switched off" in scorer.stats()["last_error"]
    model.available = True
    assert (await scorer.step()).kind == "wait"
    clock.advance(1.0)
    assert (await scorer.step()).result.scored == 1
    assert len(publisher.trips) == 1 and scorer.stats()["pending"] == 0


class _EditedOnce(InMemoryScoreStore):
    """A store whose policy an admin edits between the round's load and its first write."""

    edits = 1

    async def write_scores(self, outcomes):
        if self.edits:
            self.edits -= 1
            (policy,) = self.policies.values()
            edited = policy.current_premium + Decimal("100.00")
            self.policies[policy.policy_id] = PolicyRow(policy.policy_id, policy.driver_id, edited)
        return await super().write_scores(outcomes)


async def test_a_stale_policy_is_reloaded_and_the_quote_recomputed():
    store, clock = _EditedOnce(), FakeClock()
    store.add_trips([trip("a", 1, T0_MS)])
    store.add_policy(PolicyRow(uuid.uuid4(), "a", Decimal("600.00")))
    scoring = ScoringRound(store, FakeRiskModel(), RecordingScorePublisher(), WINDOW_DAYS, clock=clock)
    result = await scoring.score(["a"])
    assert (result.stale_policies, result.scored, result.policies_updated) == (1, 1, 1)
    (policy,) = store.policies.values()
    quote = [e for e in store.events.streams["risk:a"] if e.event_type == "premium_quoted"]
    assert len(quote) == 1 and b'"previous_premium":"700.00"' in quote[0].payload_json
    assert policy.current_premium != Decimal("600.00")


async def test_a_policy_stale_every_time_fails_the_round():
    store = _EditedOnce()
    store.edits = 10
    store.add_trips([trip("a", 1, T0_MS)])
    store.add_policy(PolicyRow(uuid.uuid4(), "a", Decimal("600.00")))
    scoring = ScoringRound(store, FakeRiskModel(), RecordingScorePublisher(), WINDOW_DAYS, clock=FakeClock())
    with pytest.raises(StalePolicy):
        await scoring.score(["a"])
    assert store.scores == {}
