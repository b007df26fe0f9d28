"""The Redis plan of a scoring round (storage/redis/score_projection.py, pure half): shapes, order, determinism."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

import pytest

from domain.events import encode_event, event_type
from domain.pricing import DEFAULT_RULES
from domain.risk_assessment import FactorContribution, RiskAssessment
from domain.scoring import EndedTrip, PolicyTerms, score_events
from storage.redis.projections import invalidation_payload
from storage.redis.score_projection import plan_scores, trip_messages
from usecases.ports.score_store import ScoredTrip, StoredRiskEvent

POLICY = PolicyTerms(
    policy_id=uuid.UUID("5b0f3c2e-8d7a-4f1e-9a6b-2c4d6e8f0a1b"),
    base_premium=Decimal("600.00"),
    current_premium=Decimal("600.00"),
    per_km_rate=Decimal("0.02"),
    currency="EUR",
)


def stored_events(
    driver_id: str, seq: int, with_policy: bool, n: int = 0, version: int = 7
) -> tuple[EndedTrip, list[StoredRiskEvent]]:
    trip = EndedTrip(driver_id, uuid.uuid5(uuid.NAMESPACE_URL, f"{driver_id}/{n}"), 1_767_222_373_000 + n, seq)
    assessment = RiskAssessment(
        driver_id=driver_id,
        model_version="freq-abc",
        feature_hash="ab" * 32,
        score=42.5,
        band="C",
        rate=0.08,
        model_rate=0.09,
        prior_rate=0.07,
        credibility=0.5,
        top_factors=(FactorContribution("night_share", 0.12),),
    )
    outcome = score_events(
        assessment, trip, annual_km=9_000.0, policy=POLICY if with_policy else None, rules=DEFAULT_RULES
    )
    events = [outcome.risk_scored] + ([outcome.premium_quoted] if outcome.premium_quoted else [])
    # stored out of order on purpose: the plan orders messages itself
    return trip, [
        StoredRiskEvent(e.event_id, event_type(e), version + i, e.occurred_at_ms, encode_event(e))
        for i, e in reversed(list(enumerate(events)))
    ]


def scored(*args, **kwargs) -> ScoredTrip:
    trip, events = stored_events(*args, **kwargs)
    return ScoredTrip(trip, tuple(events))


def test_a_scored_trip_gets_its_messages_in_stream_order():
    trip, events = stored_events("driver0001", 4211, with_policy=True)
    keyed = trip_messages(trip, events)
    messages = [json.loads(m) for _, m in keyed]
    assert [m["type"] for m in messages] == ["risk_scored", "premium_quoted"]
    assert [m["stream_version"] for m in messages] == [7, 8]
    for (seq, _raw), m in zip(keyed, messages, strict=True):
        assert seq == m["seq"] == 4211 and m["driver_id"] == "driver0001" and m["ts_ms"] == trip.end_ms
        assert list(m)[:4] == ["type", "driver_id", "seq", "ts_ms"]
        assert m["payload"]["type"] == m["type"] and m["event_id"] == m["payload"]["event_id"]
    assert messages[0]["payload"]["score"] == 42.5 and messages[0]["payload"]["trip_id"] == str(trip.trip_id)
    assert messages[1]["payload"]["premium"] == "690.00"  # 600 + 180 per-km, capped at 600 × 1.15


def test_the_plan_is_sorted_deterministic_and_invalidates_the_scored_drivers():
    trips = [scored("b", 9, False), scored("a", 3, True)]
    plan = plan_scores(trips)
    assert plan == plan_scores(list(reversed(trips)))
    assert [d.driver_id for d in plan.drivers] == ["a", "b"]
    assert all(d.cache_stale for d in plan.drivers)  # a new score retires the driver's cached answers
    assert plan.invalidation == invalidation_payload(["a", "b"])
    (fleet,) = plan.fleet_payloads
    body = json.loads(fleet)
    assert body["type"] == "fleet_batch" and [m["type"] for m in body["messages"]] == [
        "risk_scored",
        "premium_quoted",
        "risk_scored",
    ]
    assert plan_scores([]).invalidation is None


def test_a_drivers_trips_are_planned_in_the_rounds_order_each_in_message_order():
    first, second = scored("a", 30, True, n=1, version=1), scored("a", 20, True, n=2, version=3)
    plan = plan_scores([first, second])
    (driver,) = plan.drivers
    messages = [json.loads(m) for _, m in driver.messages]
    assert [(m["type"], m["stream_version"]) for m in messages] == [
        ("risk_scored", 1), ("premium_quoted", 2), ("risk_scored", 3), ("premium_quoted", 4),
    ]  # fmt: skip
    assert [seq for seq, _ in driver.messages] == [30, 30, 20, 20]


def test_a_trip_is_planned_once_and_needs_its_risk_scored_event():
    trip = scored("a", 1, False)
    with pytest.raises(ValueError):
        plan_scores([trip, trip])
    bare, events = stored_events("a", 1, True)
    with pytest.raises(ValueError):
        trip_messages(bare, [e for e in events if e.event_type == "premium_quoted"])
