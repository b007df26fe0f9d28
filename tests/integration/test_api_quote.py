"""One rule for the premium: after a scoring written by the scorer's own storage functions, the quote endpoint
answers the stored `PremiumQuoted` (not a re-pricing capped a second time against the premium the scoring
already moved); before any scoring it prices the prior over the scorer's window ending at the latest trip."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import asyncpg

from domain import pricing
from domain.events import PremiumQuoted, decode_event
from domain.features import driver_features
from domain.scoring import quote_policy, risk_stream_id, window_start_ms
from storage.memory.risk_model import FakeRiskModel
from storage.memory.score_store import RecordingScorePublisher
from storage.postgres.pool import create_pool
from storage.postgres.score_store import PostgresScoreStore
from tests.integration.inprocess_api import bearer, drop_seeded, insert_trips, login, running_api, seeded_database
from usecases.ports.score_store import TripSpan
from usecases.scoring_round import ScoringRound

DRIVER = "driver0001"


async def _quote(client, token: str) -> dict:
    response = await client.get("/api/v1/policies/me/quote", headers=bearer(token))
    assert response.status_code == 200, response.text
    return response.json()


async def test_the_quote_and_the_stored_premium_agree_after_a_scoring(base_settings):
    settings = await seeded_database(base_settings, drivers=1)
    pool = await create_pool(settings, application_name="autoins-quote-test", min_size=1)
    try:
        end = datetime(2026, 11, 30, 18, 0, tzinfo=UTC)  # device time; the quote must not depend on now()
        await insert_trips(settings, DRIVER, 6, end=end)
        end_ms = round(end.timestamp() * 1000)
        window_days = settings.scoring_window_days
        store = PostgresScoreStore(pool)
        async with running_api(settings) as (app, client):
            token = await login(client, DRIVER)
            inputs = await store.load_inputs([TripSpan(DRIVER, window_start_ms(end_ms, window_days), end_ms)])
            features = driver_features(inputs.trips[DRIVER], window_days)
            policy = inputs.policies[DRIVER]

            before = await _quote(client, token)  # not scored yet: the prior, priced like the scorer would
            expected = quote_policy(before["score"], features.annual_km, policy, pricing.DEFAULT_RULES)
            assert (before["score_source"], Decimal(before["premium"]), before["annual_km"]) == (
                "prior", expected.premium, expected.annual_km)

            # The scorer's own round scores all six trips in order; the premium chains through them.
            scoring = ScoringRound(store=store, model=FakeRiskModel(model_version="quote-test-1"),
                                   publisher=RecordingScorePublisher(), window_days=window_days)
            result = await scoring.score([DRIVER])
            assert result.scored == 6
            await app.state.resources.cache.invalidate([DRIVER])  # what the scorer's publish does

            after = await _quote(client, token)
            stored = await _stored_quote(pool)
            current = await pool.fetchval("SELECT current_premium FROM policies WHERE driver_id = $1", DRIVER)
            assert stored.occurred_at_ms == end_ms  # the last trip's quote
            assert Decimal(after["premium"]) == stored.premium == current
            assert (after["score_source"], after["score"], after["policy_id"]) == (
                "scored", stored.score, str(stored.policy_id))
            assert after["previous_premium"] == (None if stored.previous_premium is None
                                                 else str(stored.previous_premium))
            assert (after["annual_km"], after["cap_applied"]) == (stored.annual_km, stored.cap_applied)
    finally:
        await pool.close()
        await drop_seeded(settings)


async def _stored_quote(pool: asyncpg.Pool) -> PremiumQuoted:
    payload = await pool.fetchval(
        "SELECT payload::text FROM domain_events WHERE stream_id = $1 AND event_type = 'premium_quoted'"
        " ORDER BY stream_version DESC LIMIT 1", risk_stream_id(DRIVER))
    event = decode_event(payload)
    assert isinstance(event, PremiumQuoted)
    return event
