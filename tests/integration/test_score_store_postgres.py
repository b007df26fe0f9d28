"""The ScoreStore contract (tests/contracts/score_store_contract.py) against PostgresScoreStore: one migrated
database for the module, emptied before each backend; risk events read back from `domain_events`."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from decimal import Decimal

import asyncpg
import pytest

from config.settings import Settings
from domain.batches import NewEvent
from domain.events import decode_event, encode_event
from domain.trip_summary import TripSummary
from storage.postgres.event_store import append_events, insert_trips
from storage.postgres.event_store_sql import ms_to_ts
from storage.postgres.partitions import ensure_for_timestamps
from storage.postgres.pool import create_pool, drop_database, plain
from storage.postgres.premium_ledger import stored_ledger, stream_ledger
from storage.postgres.score_store import PostgresScoreStore
from tests.contracts.score_store_contract import *  # noqa: F403 (the contract's test functions)
from tests.contracts.score_store_contract import History
from tests.integration.fixtures_db import create_migrated_database

pytestmark = pytest.mark.timeout(300)

TABLES = "risk_scores, policies, drivers, trips, domain_events, streams, telematics_events, premium_ledger, disputes"
SCORE_COLUMNS = (
    "score_id",
    "driver_id",
    "at",
    "score",
    "band",
    "model_version",
    "feature_hash",
    "credibility",
    "trip_id",
)


@pytest.fixture(scope="module")
async def pg_pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    url = await create_migrated_database(settings, prefix="autoins_ss")
    pool = await create_pool(settings.with_overrides(database_url=url), application_name="test-score-store",
                             min_size=1, max_size=3)  # fmt: skip
    try:
        yield pool
    finally:
        await pool.close()
        await drop_database(url)


class PostgresBackend:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.store = PostgresScoreStore(pool)

    async def add_trips(self, trips: Sequence[TripSummary], seqs: Mapping[uuid.UUID, int] | None = None) -> None:
        async with self.pool.acquire() as conn:
            await insert_trips(conn, list(trips))
            readings = [t for t in trips if t.trip_id in (seqs or {})]
            if not readings:
                return
            await ensure_for_timestamps(conn, "telematics_events", [t.end_ms for t in readings])
            await conn.execute(
                f"""INSERT INTO telematics_events (event_id, ts, driver_id, event_type, lat, lon, speed_kmh, accel_ms2,
                                                   heading, source_partition, source_offset)
                    SELECT gen_random_uuid(), {ms_to_ts("r.end_ms")}, r.driver_id, 'ignition_off', 38.7, -9.1, 0, 0,
                           0, 0, r.seq
                    FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS r(driver_id, end_ms, seq)""",
                [t.driver_id for t in readings],
                [t.end_ms for t in readings],
                [seqs[t.trip_id] for t in readings],
            )

    async def add_policy(
        self,
        policy_id: uuid.UUID,
        driver_id: str,
        premium: Decimal,
        *,
        status: str = "active",
        effective_date: dt.date = dt.date(2026, 1, 1),
        policy_number: str | None = None,
    ) -> None:
        await self.pool.execute(
            """INSERT INTO drivers (driver_id, first_name, last_name, email) VALUES ($1, 'T', $1, $1 || '@example.test')
               ON CONFLICT DO NOTHING""",
            driver_id,
        )
        await self.pool.execute(
            """INSERT INTO policies (policy_id, driver_id, policy_number, status, base_premium, current_premium,
                                     per_km_rate, currency, effective_date, expiration_date)
               VALUES ($1, $2, $3, $4, $5, $5, 0.02, 'EUR', $6::date, $6::date + 365)""",
            policy_id,
            driver_id,
            policy_number or f"P-{policy_id}",
            status,
            premium,
            effective_date,
        )

    async def set_premium(self, policy_id: uuid.UUID, premium: Decimal) -> None:
        await self.pool.execute("UPDATE policies SET current_premium = $2 WHERE policy_id = $1", policy_id, premium)

    async def append_foreign(self, event: NewEvent) -> None:
        async with self.pool.acquire() as conn:
            await ensure_for_timestamps(conn, "domain_events", [event.occurred_at_ms])
            async with conn.transaction():
                await append_events(conn, [event])

    async def history(self) -> History:
        scores = sorted(
            tuple(plain(r[c]) for c in SCORE_COLUMNS)
            for r in await self.pool.fetch(
                "SELECT *, (extract(epoch FROM scored_at) * 1000)::bigint AS at FROM risk_scores"
            )
        )
        events = sorted(
            (r["stream_id"], r["stream_version"], plain(r["event_id"]), r["event_type"], _canonical(r["payload"]))
            for r in await self.pool.fetch(
                "SELECT stream_id, stream_version, event_id, event_type, payload::text AS payload FROM domain_events "
                "WHERE stream_id LIKE 'risk:%'"
            )
        )
        policies = {
            plain(r["policy_id"]): (r["current_premium"], _float(r["last_score"]), r["last_band"])
            for r in await self.pool.fetch("SELECT * FROM policies")
        }
        # The premium ledger is the fold of the risk events compared above: whatever crashes and orders a run had,
        # the table written round by round equals the ledger a replay of the log gives.
        async with self.pool.acquire() as conn:
            for (driver_id,) in await conn.fetch("SELECT DISTINCT driver_id FROM premium_ledger"):
                assert await stored_ledger(conn, driver_id) == await stream_ledger(conn, driver_id), driver_id
        return History(scores, events, policies)


def _float(value) -> float | None:
    return None if value is None else float(value)


def _canonical(payload: str) -> bytes:
    try:
        return encode_event(decode_event(payload))
    except Exception:  # another writer's test event: compare its text
        return payload.encode()


@pytest.fixture
def new_backend(pg_pool: asyncpg.Pool):
    async def make() -> PostgresBackend:
        await pg_pool.execute(f"TRUNCATE {TABLES} CASCADE")
        return PostgresBackend(pg_pool)

    return make
