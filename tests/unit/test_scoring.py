"""Scoring on trip end, pure half (domain/scoring.py): events, ids, guardrails, which trips get scored."""

from __future__ import annotations

import itertools
import uuid
from decimal import Decimal

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.batches import NewEvent, ShardOutput
from domain.events import PremiumQuoted, RiskScored, decode_event, encode_event
from domain.ids import trip_event_id
from domain.pricing import DEFAULT_RULES, band_for, quote
from domain.risk_assessment import FactorContribution, RiskAssessment
from domain.scoring import (
    EndedTrip,
    PolicyTerms,
    ended_trips,
    policy_rules,
    risk_stream_id,
    score_driver_trips,
    score_events,
    trip_order,
    window_start_ms,
    window_trips,
)
from domain.trip_summary import TripSummary

TRIP = EndedTrip("driver0001", uuid.UUID("88155699-8b16-5fb1-82b7-7f49d1ec08ba"), 1_767_222_373_000, 4211)
POLICY = PolicyTerms(
    policy_id=uuid.UUID("5b0f3c2e-8d7a-4f1e-9a6b-2c4d6e8f0a1b"),
    base_premium=Decimal("600.00"),
    current_premium=Decimal("612.40"),
    per_km_rate=Decimal("0.0200"),
    currency="EUR",
)


def assessment(score: float = 37.25, driver_id: str = "driver0001", version: str = "freq-abc") -> RiskAssessment:
    return RiskAssessment(
        driver_id=driver_id,
        model_version=version,
        feature_hash="9c" * 32,
        score=score,
        band=band_for(score).name,
        rate=0.0841,
        model_rate=0.0912,
        prior_rate=0.078,
        credibility=0.47,
        top_factors=(FactorContribution("harsh_braking_per_100km", 0.1823), FactorContribution("night_share", 0.06)),
    )


def test_same_inputs_give_the_same_ids_and_bytes():
    runs = [score_events(assessment(), TRIP, annual_km=11_890.5, policy=POLICY, rules=DEFAULT_RULES) for _ in range(2)]
    a, b = runs
    assert encode_event(a.risk_scored) == encode_event(b.risk_scored)
    assert encode_event(a.premium_quoted) == encode_event(b.premium_quoted)
    assert a.risk_scored.event_id != a.premium_quoted.event_id


def test_ids_depend_on_trip_and_model_version_only():
    base = score_events(assessment(), TRIP, annual_km=10_000, policy=POLICY, rules=DEFAULT_RULES)
    other_policy = msgspec_replace(POLICY, current_premium=Decimal("700.00"))
    repriced = score_events(assessment(50.0), TRIP, annual_km=2_000, policy=other_policy, rules=DEFAULT_RULES)
    assert repriced.risk_scored.event_id == base.risk_scored.event_id
    assert repriced.premium_quoted.event_id == base.premium_quoted.event_id
    new_model = score_events(assessment(version="freq-def"), TRIP, annual_km=10_000, policy=POLICY, rules=DEFAULT_RULES)
    assert new_model.risk_scored.event_id != base.risk_scored.event_id
    other_trip = msgspec_replace(TRIP, trip_id=uuid.uuid5(uuid.NAMESPACE_URL, "x"))
    moved = score_events(assessment(), other_trip, annual_km=1, policy=None, rules=DEFAULT_RULES)
    assert moved.risk_scored.event_id != base.risk_scored.event_id


def test_risk_scored_carries_the_assessment_at_the_trip_end():
    event = score_events(assessment(), TRIP, annual_km=1.0, policy=POLICY, rules=DEFAULT_RULES).risk_scored
    a = assessment()
    assert isinstance(event, RiskScored)
    assert (event.driver_id, event.trip_id, event.occurred_at_ms, event.scored_at_ms) == (
        TRIP.driver_id,
        TRIP.trip_id,
        TRIP.end_ms,
        TRIP.end_ms,
    )
    assert (event.model_version, event.feature_hash, event.score, event.band, event.credibility) == (
        a.model_version,
        a.feature_hash,
        a.score,
        a.band,
        a.credibility,
    )
    assert (event.rate, event.model_rate, event.prior_rate, event.top_factors) == (
        a.rate,
        a.model_rate,
        a.prior_rate,
        a.top_factors,
    )
    assert decode_event(encode_event(event)) == event


def test_a_driver_without_policy_gets_a_score_and_no_quote():
    outcome = score_events(assessment(), TRIP, annual_km=10_000, policy=None, rules=DEFAULT_RULES)
    assert outcome.premium_quoted is None
    assert outcome.risk_scored.score == 37.25


def test_the_quote_is_domain_pricing_with_the_policy_terms():
    outcome = score_events(assessment(37.25), TRIP, annual_km=11_890.5, policy=POLICY, rules=DEFAULT_RULES)
    expected = quote(37.25, 11_890.5, previous_premium=Decimal("612.40"), rules=policy_rules(POLICY, DEFAULT_RULES))
    quoted = outcome.premium_quoted
    assert isinstance(quoted, PremiumQuoted)
    assert (quoted.premium, quoted.raw_premium, quoted.band, quoted.currency) == (
        expected.premium,
        expected.raw_premium,
        "B",
        "EUR",
    )
    # raw 777.81 is held down to ⌊612.40 × 1.15⌋ = 704.26
    assert quoted.raw_premium == Decimal("777.81") and quoted.premium == Decimal("704.26") and quoted.cap_applied
    assert quoted.previous_premium == Decimal("612.40") and quoted.policy_id == POLICY.policy_id


def test_the_forecast_names_the_better_band_and_its_premium():
    no_cap = msgspec_replace(POLICY, current_premium=Decimal("0"))
    quoted = score_events(assessment(47.5), TRIP, annual_km=0.0, policy=no_cap, rules=DEFAULT_RULES).premium_quoted
    assert quoted.previous_premium is None and not quoted.cap_applied
    assert quoted.premium == Decimal("600.00")  # band C: 1.00 × 600, no per-km part
    f = quoted.forecast
    assert (f.better_band, f.score_drop_to_better_band) == ("B", 7.5)
    assert (f.premium_at_better_band, f.saving_at_better_band) == (Decimal("540.00"), Decimal("60.00"))
    best = score_events(assessment(5.0), TRIP, annual_km=0.0, policy=no_cap, rules=DEFAULT_RULES).premium_quoted
    assert best.band == "A" and best.forecast.better_band is None and best.forecast.premium_at_better_band is None


@settings(max_examples=200, deadline=None)
@given(
    score=st.floats(min_value=0, max_value=100),
    annual_km=st.floats(min_value=0, max_value=200_000),
    previous_cents=st.integers(min_value=25_000, max_value=500_000),
)
def test_guardrails_hold_for_any_score_and_previous_premium(score, annual_km, previous_cents):
    previous = Decimal(previous_cents) / 100
    policy = msgspec_replace(POLICY, current_premium=previous)
    quoted = score_events(assessment(score), TRIP, annual_km=annual_km, policy=policy, rules=DEFAULT_RULES)
    premium = quoted.premium_quoted.premium
    assert previous * Decimal("0.85") <= premium <= previous * Decimal("1.15")
    assert DEFAULT_RULES.min_premium <= premium <= DEFAULT_RULES.max_premium
    assert premium == premium.quantize(Decimal("0.01"))


def test_an_assessment_of_another_driver_is_refused():
    with pytest.raises(ValueError, match="driver0002"):
        score_events(assessment(driver_id="driver0002"), TRIP, annual_km=1, policy=None, rules=DEFAULT_RULES)


def test_a_drivers_premium_chains_through_its_trips_in_order():
    trips = [msgspec_replace(TRIP, trip_id=uuid.uuid5(TRIP.trip_id, str(n)), end_ms=TRIP.end_ms + n) for n in range(3)]
    chain = [(t, assessment(score=s), 12_000.0) for t, s in zip(trips, (10.0, 90.0, 95.0), strict=True)]
    out = score_driver_trips(chain, POLICY, DEFAULT_RULES)
    quotes = [o.premium_quoted for o in out]
    assert quotes[0].previous_premium == POLICY.current_premium
    assert [q.previous_premium for q in quotes[1:]] == [q.premium for q in quotes[:-1]]
    assert [o.risk_scored.trip_id for o in out] == [t.trip_id for t in trips]
    assert all(o.premium_quoted is None for o in score_driver_trips(chain, None, DEFAULT_RULES))
    with pytest.raises(ValueError, match="end order"):
        score_driver_trips(list(reversed(chain)), POLICY, DEFAULT_RULES)
    with pytest.raises(ValueError, match="one driver"):
        score_driver_trips([*chain[:1], (msgspec_replace(TRIP, driver_id="x"), assessment(), 1.0)], None, DEFAULT_RULES)


def test_policy_terms_override_the_tariff():
    terms = msgspec_replace(POLICY, base_premium=Decimal("900.00"), per_km_rate=Decimal("0.05"), currency="CHF")
    rules = policy_rules(terms, DEFAULT_RULES)
    assert (rules.base_annual_premium, rules.per_km_rate, rules.currency) == (Decimal("900.00"), Decimal("0.05"), "CHF")
    assert rules.max_change_ratio == DEFAULT_RULES.max_change_ratio
    assert policy_rules(msgspec_replace(terms, base_premium=Decimal(0)), DEFAULT_RULES).base_annual_premium == Decimal(
        "600.00"
    )


def test_risk_streams_never_collide_with_driver_streams():
    assert risk_stream_id("driver0001") == "risk:driver0001"
    assert ":" in risk_stream_id("risk-driver0001")  # a driver id never contains ':' (validation)


def test_the_window_ends_at_the_trip_end():
    assert window_start_ms(TRIP.end_ms, 365) == TRIP.end_ms - 365 * 86_400_000
    with pytest.raises(ValueError):
        window_start_ms(TRIP.end_ms, 0)


def _ended(driver: str, end_ms: int, seq: int, n: int = 0) -> EndedTrip:
    return EndedTrip(driver, uuid.uuid5(uuid.NAMESPACE_URL, f"{driver}-{end_ms}-{n}"), end_ms, seq)


def test_a_drivers_trips_are_ordered_by_end_then_trip_id_whatever_the_order_given():
    trips = [_ended("a", 300, 9), _ended("a", 100, 5), _ended("a", 300, 7, n=1), _ended("a", 200, 7)]
    orders = {tuple(sorted(order, key=trip_order)) for order in itertools.permutations(trips)}
    assert len(orders) == 1
    (only,) = orders
    assert [t.end_ms for t in only] == [100, 200, 300, 300]
    assert only[2].trip_id < only[3].trip_id


def test_a_window_holds_the_trips_that_ended_in_it_including_the_scored_one():
    trips = [_summary(_ended("a", end, 0)) for end in (1_000, 86_400_000, 2 * 86_400_000, 3 * 86_400_000)]
    assert window_trips(trips, 2 * 86_400_000, 1.0) == trips[2:3]
    assert window_trips(trips, 2 * 86_400_000, 1.5) == trips[1:3]
    assert window_trips(trips, 3 * 86_400_000 - 1, 5.0) == trips[:3]


def _summary(trip: EndedTrip) -> TripSummary:
    return TripSummary(
        trip_id=trip.trip_id,
        driver_id=trip.driver_id,
        start_ms=trip.end_ms - 600_000,
        end_ms=trip.end_ms,
        distance_m=5_000.0,
        duration_s=600.0,
        avg_speed_kmh=30.0,
        max_speed_kmh=60.0,
    )


def _trip_ended_event(trip: EndedTrip) -> NewEvent:
    event_id = trip_event_id("trip_ended", trip.trip_id)
    return NewEvent(event_id, trip.driver_id, 3, "trip_ended", trip.end_ms, b"{}", trip.seq)


def test_ended_trips_of_a_batch_carry_the_offset_of_their_trip_ended_event():
    a1, a2, b1 = _ended("a", 100, 11), _ended("a", 200, 17), _ended("b", 150, 13)
    other = NewEvent(uuid.uuid4(), "a", 4, "trip_started", 210, b"{}", 18)
    outputs = [
        ShardOutput(shard=1, events=[_trip_ended_event(b1)], trips=[_summary(b1)]),
        ShardOutput(
            shard=0,
            events=[_trip_ended_event(a1), _trip_ended_event(a2), other],
            trips=[_summary(a1), _summary(a2)],
        ),
        ShardOutput(shard=2),
    ]
    assert ended_trips(outputs) == [a1, a2, b1]  # every trip, per driver in trip order
    assert ended_trips([*outputs, outputs[0]]) == [a1, a2, b1]
    assert ended_trips([ShardOutput(shard=0, trips=[_summary(a1)])]) == [EndedTrip("a", a1.trip_id, 100, -1)]
    assert ended_trips([ShardOutput(shard=0)]) == []


def msgspec_replace(struct, **changes):
    return msgspec.structs.replace(struct, **changes)
