"""The driver queries over the fakes: 404 vs empty, the prior, the cache, and the quote's one rule (the stored
PremiumQuoted of the latest scoring, else the scorer's function over the scorer's device-time window)."""

from __future__ import annotations

import json
import uuid
from datetime import date, timedelta
from decimal import Decimal

import msgspec
import pytest

from domain import pricing
from domain.features import driver_features
from domain.scoring import EndedTrip, PolicyTerms, quote_policy, score_events, window_start_ms
from storage.memory.cache import InMemoryResponseCache
from storage.memory.read_models import InMemoryDriverReadModels
from storage.memory.risk_model import FakeRiskModel
from tests.contracts.read_models_contract import T0, ms
from tests.unit.test_port_contracts import driver_row, policy_row, score_row, trip_row
from usecases.driver_queries import DriverQueries, QueryTerms
from usecases.ports.risk_model import RiskModelUnavailable
from usecases.views import QuoteView

DRIVER = "driver0001"
WINDOW_DAYS = 90.0


def _queries(models: InMemoryDriverReadModels, risk: FakeRiskModel | None = None) -> DriverQueries:
    return DriverQueries(models, InMemoryResponseCache(), risk or FakeRiskModel(),
                         QueryTerms(ttl_default_s=60, ttl_score_s=30, window_days=WINDOW_DAYS))


def _world() -> InMemoryDriverReadModels:
    models = InMemoryDriverReadModels()
    models.add_driver(driver_row(DRIVER))
    return models


async def test_an_unknown_driver_is_none_and_a_known_one_without_trips_an_empty_page():
    queries = _queries(_world())
    assert await queries.profile("nobody") is None and await queries.trips("nobody", 1, 20) is None
    page = json.loads(await queries.trips(DRIVER, 1, 20))
    assert page == {"items": [], "page": 1, "page_size": 20, "total": 0}


async def test_a_driver_not_scored_yet_gets_the_models_prior_once_then_from_the_cache():
    risk = FakeRiskModel()
    queries = _queries(_world(), risk)
    first = json.loads(await queries.score(DRIVER))
    assert (first["source"], first["credibility"], first["scored_at"]) == ("prior", 0.0, None)
    assert await queries.score(DRIVER) == msgspec.json.encode(first) and risk.calls == [1]


async def test_the_prior_needs_the_model():
    with pytest.raises(RiskModelUnavailable):
        await _queries(_world(), FakeRiskModel(available=False)).score(DRIVER)


async def test_a_scored_driver_gets_the_latest_score_with_its_factors():
    models = _world()
    models.add_score(score_row(DRIVER, T0, 37.5, None, "m1"))
    body = json.loads(await _queries(models).score(DRIVER))
    assert (body["source"], body["score"], body["top_factors"]) == (
        "scored", 37.5, [{"name": "night_share", "contribution": 0.1}])


def _trips(models: InMemoryDriverReadModels, count: int) -> list[EndedTrip]:
    """`count` one-hour trips of 30 km, one a day, the last ending at T0; plus one 200 days earlier (outside)."""
    ended = []
    for start in [T0 - timedelta(days=200), *(T0 - timedelta(days=i, hours=1) for i in range(count - 1, -1, -1))]:
        trip_id = uuid.uuid4()
        models.add_trip(trip_row(trip_id, DRIVER, start, start + timedelta(hours=1), 30_000.0))
        ended.append(EndedTrip(DRIVER, trip_id, ms(start + timedelta(hours=1)), -1))
    return ended


def _policy(models: InMemoryDriverReadModels, current: Decimal) -> PolicyTerms:
    policy_id = uuid.uuid4()
    row = {**policy_row(policy_id, DRIVER, "P-1", "active", date(2026, 1, 1), Decimal("800.00")),
           "current_premium": current}
    models.add_policy(row)
    return PolicyTerms(policy_id=policy_id, base_premium=row["base_premium"], current_premium=current,
                       per_km_rate=row["per_km_rate"], currency=row["currency"])


async def test_the_quote_serves_the_stored_premium_of_the_latest_scoring_on_the_active_policy():
    models = _world()
    trips = _trips(models, 5)
    before = _policy(models, Decimal("800.00"))
    window = await models.window_trips(DRIVER, window_start_ms(trips[-1].end_ms, WINDOW_DAYS), trips[-1].end_ms)
    features = driver_features(window, WINDOW_DAYS)
    assessment = (await FakeRiskModel().assess_many([_request(features)]))[0]
    outcome = score_events(assessment, trips[-1], annual_km=features.annual_km, policy=before,
                           rules=pricing.DEFAULT_RULES)
    stored = outcome.premium_quoted
    # what the scorer's write does: the score row, the event, and the policy moved to the new premium
    models.add_score({**score_row(DRIVER, T0, assessment.score, trips[-1].trip_id, assessment.model_version),
                      "score": Decimal(str(assessment.score))})
    models.add_quote(stored)
    models.policy_rows[0]["current_premium"] = stored.premium
    quote = msgspec.json.decode(await _queries(models).quote(DRIVER), type=QuoteView)
    assert (quote.premium, quote.previous_premium, quote.annual_km) == (
        stored.premium, stored.previous_premium, stored.annual_km)
    # re-pricing against the moved current premium would apply the cap a second time: the bug this replaces
    assert quote.cap_applied == stored.cap_applied and quote.policy_id == before.policy_id


async def test_without_a_stored_quote_the_quote_prices_the_scorers_window_ending_at_the_latest_trip():
    models = _world()
    trips = _trips(models, 5)
    policy = _policy(models, Decimal("760.00"))
    quote = msgspec.json.decode(await _queries(models).quote(DRIVER), type=QuoteView)
    window = await models.window_trips(DRIVER, window_start_ms(trips[-1].end_ms, WINDOW_DAYS), trips[-1].end_ms)
    assert len(window) == 5  # the trip 200 days back is outside the window
    expected = quote_policy(quote.score, driver_features(window, WINDOW_DAYS).annual_km, policy,
                            pricing.DEFAULT_RULES)
    assert (quote.score_source, quote.premium, quote.annual_km) == ("prior", expected.premium, expected.annual_km)


async def test_a_stored_quote_of_an_older_scoring_or_another_policy_is_not_served():
    models = _world()
    trips = _trips(models, 2)
    policy = _policy(models, Decimal("800.00"))
    models.add_score({**score_row(DRIVER, T0, 40.0, trips[-1].trip_id, "m1")})
    old = msgspec.structs.replace(_stored(trips[0].trip_id, policy.policy_id), premium=Decimal("1.00"))
    models.add_quote(old)
    quote = msgspec.json.decode(await _queries(models).quote(DRIVER), type=QuoteView)
    assert quote.premium != Decimal("1.00") and quote.score_source == "scored"


def _stored(trip_id: uuid.UUID, policy_id: uuid.UUID):
    from tests.contracts.read_models_contract import quote_event

    return msgspec.structs.replace(quote_event(DRIVER, trip_id, policy_id, Decimal("900.00")), model_version="m1")


def _request(features):
    from domain.risk_assessment import ScoreRequest

    return ScoreRequest(driver_id=DRIVER, features=tuple(features.to_vector().tolist()))


async def test_a_trip_shows_its_harsh_episodes_per_grade_and_counts_only_medium_and_high_as_harsh():
    models = _world()
    graded = uuid.uuid4()
    row = trip_row(graded, DRIVER, T0, T0 + timedelta(minutes=30), 20_000.0)
    row.update(harsh_braking_count=3, harsh_braking_high_count=1, harsh_braking_low_count=5,
               harsh_cornering_count=1, harsh_cornering_high_count=1, harsh_acceleration_low_count=2)
    models.add_trip(row)
    before_grades = uuid.uuid4()  # a row projected before migration 0008 has no grade columns
    old = trip_row(before_grades, DRIVER, T0 + timedelta(hours=2), T0 + timedelta(hours=3), 9_000.0)
    old.update(harsh_braking_count=2)
    models.add_trip(old)
    queries = _queries(models)
    owner, body = await queries.trip(graded)
    trip = json.loads(body)
    assert owner == DRIVER and trip["harsh_braking_count"] == 3
    assert trip["harsh_by_grade"] == {"braking": {"low": 5, "medium": 2, "high": 1},
                                      "acceleration": {"low": 2, "medium": 0, "high": 0},
                                      "cornering": {"low": 0, "medium": 0, "high": 1}}
    _, body = await queries.trip(before_grades)
    assert json.loads(body)["harsh_by_grade"]["braking"] == {"low": 0, "medium": 2, "high": 0}
    page = json.loads(await queries.trips(DRIVER, 1, 20))
    assert [t["harsh_by_grade"]["braking"]["medium"] for t in page["items"]] == [2, 2]
