"""The DisputeStore contract (tests/contracts/dispute_store_contract.py) against PostgreSQL
(storage/postgres/disputes.py) on a scratch database, the tables truncated before each case."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import asyncpg
import pytest

from config.settings import Settings
from domain.events import DomainEvent, encode_event, event_type
from domain.scoring import PolicyTerms
from domain.trip_summary import TripSummary
from storage.postgres.disputes import ONE_TRIP, PostgresDisputeStore
from storage.postgres.event_store import insert_trips, trip_summary_of
from storage.postgres.event_store_sql import ms_to_ts
from storage.postgres.partitions import ensure_for_timestamps
from storage.postgres.pool import create_pool, drop_database
from tests.contracts.dispute_store_contract import *  # noqa: F403 (the contract's test functions)
from tests.integration.fixtures_db import create_migrated_database

TABLES = "disputes, premium_ledger, risk_scores, policies, drivers, trips, domain_events, streams"


@pytest.fixture(scope="module")
async def pg_pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    url = await create_migrated_database(settings, prefix="autoins_ds")
    pool = await create_pool(settings.with_overrides(database_url=url), application_name="test-dispute-store",
                             min_size=1, max_size=2)
    try:
        yield pool
    finally:
        await pool.close()
        await drop_database(url)


class PostgresBackend:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.store = PostgresDisputeStore(pool)

    async def add_trip(self, summary: TripSummary, episodes: list[DomainEvent]) -> None:
        """The trip's row and its episodes in the driver's stream, as the pipeline stores them."""
        async with self.pool.acquire() as conn:
            await insert_trips(conn, [summary])
            if not episodes:
                return
            await ensure_for_timestamps(conn, "domain_events", [e.occurred_at_ms for e in episodes])
            head = await conn.fetchval("SELECT coalesce(max(stream_version), 0) FROM domain_events "
                                       "WHERE stream_id = $1", summary.driver_id)
            await conn.executemany(
                f"INSERT INTO domain_events (event_id, stream_id, stream_version, event_type, payload, occurred_at) "
                f"VALUES ($1, $2, $3, $4, $5::text::jsonb, {ms_to_ts('$6::bigint')})",
                [(e.event_id, summary.driver_id, head + i, event_type(e), encode_event(e).decode(), e.occurred_at_ms)
                 for i, e in enumerate(episodes, start=1)])

    async def add_policy(self, driver_id: str, premium: Decimal) -> PolicyTerms:
        policy_id = uuid.uuid4()
        await self.pool.execute("INSERT INTO drivers (driver_id, first_name, last_name, email) "
                                "VALUES ($1, 'T', $1, $1 || '@example.test') ON CONFLICT DO NOTHING", driver_id)
        await self.pool.execute(
            "INSERT INTO policies (policy_id, driver_id, policy_number, status, base_premium, current_premium, "
            "per_km_rate, currency, effective_date, expiration_date) "
            "VALUES ($1, $2, $3, 'active', 600.00, $4, 0.0200, 'EUR', '2026-01-01', '2027-01-01')",
            policy_id, driver_id, f"P-{policy_id}", premium)
        return PolicyTerms(policy_id=policy_id, base_premium=Decimal("600.00"), current_premium=premium,
                           per_km_rate=Decimal("0.0200"), currency="EUR")

    async def add_score(self, driver_id: str, scored_at_ms: int) -> None:
        await self.pool.execute(
            f"INSERT INTO risk_scores (score_id, driver_id, scored_at, score, band, model_version, feature_hash, "
            f"credibility) VALUES ($1, $2, {ms_to_ts('$3::bigint')}, 50, 'C', 'm-0', 'h', 0.5)",
            uuid.uuid4(), driver_id, scored_at_ms)

    async def trip(self, trip_id: uuid.UUID) -> TripSummary:
        return trip_summary_of(await self.pool.fetchrow(ONE_TRIP, trip_id))

    async def premium(self, driver_id: str) -> Decimal:
        return await self.pool.fetchval("SELECT current_premium FROM policies WHERE driver_id = $1", driver_id)


@pytest.fixture
def new_backend(pg_pool: asyncpg.Pool):
    async def make() -> PostgresBackend:
        await pg_pool.execute(f"TRUNCATE {TABLES} CASCADE")
        return PostgresBackend(pg_pool)

    return make
