"""Disputes, the premium ledger fold and the rules version: the pure rules (domain/disputes.py,
domain/premium_ledger.py, domain/rules_version.py)."""

from __future__ import annotations

import itertools
import uuid
from decimal import Decimal

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from config.rules import rules_in_force
from config.settings import Settings
from domain.decisions import rescore_as_quote
from domain.disputes import (
    DisputeRefused,
    apply_adjustment,
    decided,
    dispute_id,
    episode_adjustment,
    opened,
    rescored,
)
from domain.events import (
    HarshBrakingDetected,
    PhoneUseDetected,
    RiskScored,
    SpeedingDetected,
    decode_event,
    encode_event,
)
from domain.features import driver_features
from domain.premium_ledger import LedgerState, fold_ledger, ledger_of
from domain.pricing import DEFAULT_RULES, PricingRules
from domain.risk_assessment import RiskAssessment
from domain.rules import TripRules
from domain.rules_version import RulesInForce, ScoringTerms
from domain.scoring import EndedTrip, PolicyTerms, score_driver_trips
from domain.trip_summary import TripSummary

DRIVER, TRIP = "driver0001", uuid.UUID("88155699-8b16-5fb1-82b7-7f49d1ec08ba")


def _braking(grade="medium") -> HarshBrakingDetected:
    return HarshBrakingDetected(event_id=uuid.uuid4(), driver_id=DRIVER, trip_id=TRIP, occurred_at_ms=1_000,
                                peak_mps2=4.2, duration_s=1.0, speed_at_start_kmh=50.0, start_ms=1_000,
                                end_ms=2_000, lat=45.0, lon=7.0, grade=grade)


def _summary(**counts) -> TripSummary:
    return TripSummary(trip_id=TRIP, driver_id=DRIVER, start_ms=0, end_ms=3_600_000, distance_m=20_000.0,
                       duration_s=3600.0, avg_speed_kmh=20.0, max_speed_kmh=80.0, **counts)


def test_a_high_braking_leaves_the_count_and_the_high_count():
    assert episode_adjustment(_braking("high")) == {"harsh_braking_count": 1.0, "harsh_braking_high_count": 1.0}
    assert episode_adjustment(_braking("medium")) == {"harsh_braking_count": 1.0}


def test_low_grade_and_phone_use_episodes_cannot_be_disputed():
    with pytest.raises(DisputeRefused, match="low-grade"):
        episode_adjustment(_braking("low"))
    phone = PhoneUseDetected(event_id=uuid.uuid4(), driver_id=DRIVER, trip_id=TRIP, occurred_at_ms=1, duration_s=5.0,
                             start_ms=1, end_ms=5_001)
    with pytest.raises(DisputeRefused, match="phone_use episode cannot be disputed"):
        episode_adjustment(phone)


def test_a_speeding_stretch_written_before_the_band_split_leaves_its_whole_duration_at_its_band():
    old = SpeedingDetected(event_id=uuid.uuid4(), driver_id=DRIVER, trip_id=TRIP, occurred_at_ms=1, band="severe",
                           duration_s=12.0, max_excess_kmh=35.0, limit_kmh=50.0, start_ms=1, end_ms=12_001)
    assert episode_adjustment(old) == {"speeding_moderate_s": 0.0, "speeding_severe_s": 12.0}


counts = st.integers(min_value=0, max_value=20)


@given(count=counts, high=counts, grade=st.sampled_from(["medium", "high"]),
       moderate=st.floats(0, 500), severe=st.floats(0, 500), taken=st.floats(0, 600))
def test_removing_an_episode_never_raises_a_count_nor_goes_below_zero(count, high, grade, moderate, severe, taken):
    summary = _summary(harsh_braking_count=count, harsh_braking_high_count=min(high, count),
                       speeding_moderate_s=moderate, speeding_severe_s=severe)
    after = apply_adjustment(summary, episode_adjustment(_braking(grade)))
    assert after.harsh_braking_count == max(count - 1, 0)
    assert 0 <= after.harsh_braking_high_count <= after.harsh_braking_count
    assert after.harsh_braking_high_count <= summary.harsh_braking_high_count
    speeding = apply_adjustment(summary, {"speeding_moderate_s": taken, "speeding_severe_s": taken})
    assert 0 <= speeding.speeding_moderate_s <= moderate and 0 <= speeding.speeding_severe_s <= severe
    rate = "harsh_braking_per_100km"
    assert getattr(driver_features([after], 365), rate) <= getattr(driver_features([summary], 365), rate)


def test_an_adjustment_of_an_unknown_field_is_refused_whole():
    with pytest.raises(ValueError, match="cannot adjust 'driver_id'"):
        apply_adjustment(_summary(), {"driver_id": 1.0})


def test_one_episode_names_one_dispute_and_blank_reasons_are_refused():
    episode = _braking()
    first = opened(driver_id=DRIVER, trip_id=TRIP, episode=episode, reason=" wet road ", opened_by="u", at_ms=5)
    again = opened(driver_id=DRIVER, trip_id=TRIP, episode=episode, reason="other", opened_by="u", at_ms=9)
    assert first.dispute_id == again.dispute_id == dispute_id(episode.event_id) and first.reason == "wet road"
    with pytest.raises(DisputeRefused, match="reason must not be empty"):
        opened(driver_id=DRIVER, trip_id=TRIP, episode=episode, reason=" \n", opened_by="u", at_ms=5)
    with pytest.raises(DisputeRefused, match="not an episode of trip"):
        opened(driver_id=DRIVER, trip_id=uuid.uuid4(), episode=episode, reason="x", opened_by="u", at_ms=5)
    with pytest.raises(DisputeRefused, match="note must not be empty"):
        decided(first, accept=True, note="", decided_by="admin", at_ms=6)


def _assessment(score: float, version: str = "m-1") -> RiskAssessment:
    return RiskAssessment(driver_id=DRIVER, model_version=version, feature_hash=f"h{score}", score=score, band="C",
                          rate=0.1, model_rate=0.1, prior_rate=0.1, credibility=0.5)


POLICY = PolicyTerms(policy_id=uuid.UUID(int=7), base_premium=Decimal("600.00"), current_premium=Decimal("600.00"),
                     per_km_rate=Decimal("0.02"), currency="EUR")


def _stream(scores, versions, dispute_score: float | None = None) -> list:
    """A risk stream: each trip scored and priced (the chain), then optionally an accepted dispute's re-score."""
    trips = [EndedTrip(DRIVER, uuid.UUID(int=i + 1), 1_000 * (i + 1), i) for i in range(len(scores))]
    outcomes = []
    policy = POLICY
    for trip, score, version in zip(trips, scores, versions, strict=True):
        [outcome] = score_driver_trips([(trip, _assessment(score, version), 1000.0)], policy, DEFAULT_RULES,
                                       rules_version="rules-x")
        policy = msgspec.structs.replace(policy, current_premium=outcome.premium_quoted.premium)
        outcomes += outcome.events()
    if dispute_score is not None:
        dispute = opened(driver_id=DRIVER, trip_id=TRIP, episode=_braking(), reason="r", opened_by="u", at_ms=1)
        outcomes += [dispute, decided(dispute, accept=True, note="n", decided_by="a", at_ms=2),
                     rescored(dispute, assessment=_assessment(dispute_score), features=driver_features([], 365),
                              window_end_ms=1, policy=policy, rules=DEFAULT_RULES, rules_version="rules-x", at_ms=2)]
    return list(enumerate(outcomes, start=1))


scores = st.lists(st.floats(0, 100, allow_nan=False), min_size=1, max_size=8)


@given(data=st.data(), scores=scores, dispute=st.none() | st.floats(0, 100))
def test_the_ledger_fold_is_deterministic_and_folding_in_parts_gives_the_whole(data, scores, dispute):
    versions = data.draw(st.lists(st.sampled_from(["m-1", "m-2"]), min_size=len(scores), max_size=len(scores)))
    stream = _stream(scores, versions, dispute)
    decoded = [(v, decode_event(encode_event(e))) for v, e in stream]  # as read back from the log
    whole = ledger_of(stream)
    assert whole == ledger_of(decoded)
    cut = data.draw(st.integers(0, len(stream)))
    state, first = fold_ledger(LedgerState(), stream[:cut])
    # the store's incremental write carries only the last entry's model version across the cut
    carried = LedgerState(last_model_version=state.last_model_version)
    _, rest = fold_ledger(carried, stream[cut:])
    inside_a_scoring = cut > 0 and isinstance(stream[cut - 1][1], RiskScored)  # a write never splits these
    if not inside_a_scoring:
        assert first + rest == whole
    assert [e.cause for e in whole][:1] in ([], ["trip"])
    for before, after in itertools.pairwise(whole):
        assert after.previous_premium == before.premium  # a chain: each decision starts from the last one
        expected = "dispute" if after.dispute_id else "model_version" if after.model_version != before.model_version \
            else "trip"
        assert after.cause == expected
        assert abs(after.premium - before.premium) <= before.premium * DEFAULT_RULES.max_change_ratio


def test_the_rules_version_is_stable_and_names_every_threshold():
    settings = Settings()
    base = rules_in_force(settings)
    assert base.version == rules_in_force(settings).version and base.version.startswith("rules-")
    tighter = msgspec.structs.replace(base, detectors=TripRules(harsh_braking_medium_mps2=-3.0))
    dearer = msgspec.structs.replace(base, pricing=PricingRules(max_change_ratio=Decimal("0.10")))
    wider = RulesInForce(pricing=base.pricing, detectors=base.detectors,
                         scoring=ScoringTerms(window_days=base.scoring.window_days + 1, k_trips=base.scoring.k_trips))
    assert len({base.version, tighter.version, dearer.version, wider.version}) == 4


def test_an_accepted_disputes_rescore_is_the_quote_in_force_as_decided():
    stream = _stream([70.0], ["m-1"], dispute_score=50.0)
    rescore = stream[-1][1]
    quoted = rescore_as_quote(rescore, DEFAULT_RULES)
    assert quoted is not None and quoted.event_id == rescore.event_id
    assert (quoted.premium, quoted.previous_premium, quoted.cap_applied) == (
        rescore.premium, rescore.previous_premium, rescore.cap_applied)
    assert (quoted.trip_id, quoted.model_version, quoted.rules_version) == (TRIP, "m-1", "rules-x")
    assert quoted.forecast.better_band == "B"  # 50 is band C: the forecast is priced from the same inputs
    unpriced = msgspec.structs.replace(rescore, policy_id=None, premium=None)
    assert rescore_as_quote(unpriced, DEFAULT_RULES) is None
