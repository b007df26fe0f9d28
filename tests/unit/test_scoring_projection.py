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
from storage.postgres.score_store import StoredRiskEvent
from storage.redis.projections import invalidation_payload
from storage.redis.score_projection import ScoreProjection, plan_scores, scored_driver

POLICY = PolicyTerms(
    policy_id=uuid.UUID("5b0f3c2e-8d7a-4f1e-9a6b-2c4d6e8f0a1b"),
    base_premium=Decimal("600.00"),
    current_premium=Decimal("600.00"),
    per_km_rate=Decimal("0.02"),
    currency="EUR",
)


def stored_events(driver_id: str, seq: int, with_policy: bool) -> tuple[EndedTrip, list[StoredRiskEvent]]:
    trip = EndedTrip(driver_id, uuid.uuid5(uuid.NAMESPACE_URL, driver_id), 1_767_222_373_000, seq)
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
        StoredRiskEvent(e.event_id, event_type(e), 7 + i, e.occurred_at_ms, encode_event(e))
        for i, e in reversed(list(enumerate(events)))
    ]


def test_a_scored_driver_gets_its_score_json_and_messages_in_stream_order():
    trip, events = stored_events("driver0001", 4211, with_policy=True)
    driver = scored_driver(trip, events)
    score = json.loads(driver.score_json)
    assert score["trip_id"] == str(trip.trip_id) and score["scored_at_ms"] == trip.end_ms and score["seq"] == 4211
    assert (score["score"], score["band"], score["model_version"], score["credibility"]) == (42.5, "C", "freq-abc", 0.5)
    assert score["top_factors"] == [{"name": "night_share", "contribution": 0.12}]
    messages = [json.loads(m) for _, m in driver.messages]
    assert [m["type"] for m in messages] == ["risk_scored", "premium_quoted"]
    assert [m["stream_version"] for m in messages] == [7, 8]
    for (seq, _raw), m in zip(driver.messages, messages, strict=True):
        assert seq == m["seq"] == 4211 and m["driver_id"] == "driver0001" and m["ts_ms"] == trip.end_ms
        assert list(m)[:4] == ["type", "driver_id", "seq", "ts_ms"]
        assert m["payload"]["type"] == m["type"] and m["event_id"] == m["payload"]["event_id"]
    assert messages[1]["payload"]["premium"] == "690.00"  # 600 + 180 per-km, capped at 600 × 1.15


def test_the_plan_is_sorted_deterministic_and_invalidates_the_scored_drivers():
    drivers = [scored_driver(*stored_events(d, s, p)) for d, s, p in (("b", 9, False), ("a", 3, True))]
    plan = plan_scores(drivers)
    assert plan == plan_scores(list(reversed(drivers)))
    assert [d.driver_id for d in plan.drivers] == ["a", "b"]
    assert plan.invalidation == invalidation_payload(["a", "b"])
    (fleet,) = plan.fleet_payloads
    body = json.loads(fleet)
    assert body["type"] == "fleet_batch" and [m["type"] for m in body["messages"]] == [
        "risk_scored",
        "premium_quoted",
        "risk_scored",
    ]
    assert plan_scores([]).invalidation is None


def test_a_driver_is_planned_once_and_needs_its_risk_scored_event():
    driver = scored_driver(*stored_events("a", 1, False))
    with pytest.raises(ValueError):
        plan_scores([driver, driver])
    trip, events = stored_events("a", 1, True)
    with pytest.raises(ValueError):
        scored_driver(trip, [e for e in events if e.event_type == "premium_quoted"])


def test_the_score_json_decodes_as_the_projection_type():
    import msgspec

    driver = scored_driver(*stored_events("a", 1, False))
    projection = msgspec.json.decode(driver.score_json, type=ScoreProjection)
    assert projection.driver_id == "a" and projection.top_factors[0] == FactorContribution("night_share", 0.12)
