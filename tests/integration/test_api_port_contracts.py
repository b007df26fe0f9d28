"""The ports' contract suites (tests/contracts/) on the real adapters: PostgresDriverReadModels and
PostgresAdminStore on a migrated scratch database, MultiLevelCache on Redis. The unit suite runs the same
checks on the in-memory fakes."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

import pytest

from domain.events import PremiumQuoted, decode_event, encode_event, event_type
from domain.scoring import risk_stream_id
from storage.postgres.admin_queries import PostgresAdminStore
from storage.postgres.devices import PostgresDeviceStore
from storage.postgres.partitions import ensure_for_timestamps
from storage.postgres.pool import create_pool, drop_database
from storage.postgres.read_models import PostgresDriverReadModels
from storage.redis.cache import MultiLevelCache
from storage.redis.client import create_redis
from storage.redis.login_throttle import RedisLoginThrottle
from tests.contracts import admin_store_contract as admin_store
from tests.contracts import cache_contract as cache
from tests.contracts import device_store_contract as device_store
from tests.contracts import login_throttle_contract as login_throttle
from tests.contracts import read_models_contract as read_models
from tests.integration.fixtures_db import create_migrated_database
from tests.integration.inprocess_api import api_settings
from tests.unit.test_port_contracts import driver_row, policy_row, score_row, trip_row


@pytest.fixture(scope="module")
async def pg(base_settings):
    url = await create_migrated_database(base_settings, prefix="autoins_ports")
    settings = api_settings(base_settings, url)
    pool = await create_pool(settings, application_name="autoins-contracts", min_size=1)
    try:
        yield settings, pool
    finally:
        await pool.close()
        await drop_database(url)


class PostgresWorld:
    def __init__(self, settings, pool) -> None:
        self.pool = pool
        self.models = PostgresDriverReadModels(pool, settings)

    async def _insert(self, table: str, row: dict) -> None:
        names = list(row)
        values = ", ".join(f"${i}" for i in range(1, len(names) + 1))
        await self.pool.execute(f"INSERT INTO {table} ({', '.join(names)}) VALUES ({values})", *row.values())

    async def given_driver(self, driver_id: str) -> None:
        await self._insert("drivers", driver_row(driver_id))

    async def given_trip(self, driver_id: str, start: datetime, end: datetime, distance_m: float) -> uuid.UUID:
        trip_id = uuid.uuid4()
        await self._insert("trips", trip_row(trip_id, driver_id, start, end, distance_m))
        return trip_id

    async def given_score(self, driver_id: str, scored_at: datetime, score: float, trip_id: uuid.UUID | None,
                          model_version: str) -> None:
        await self._insert("risk_scores", score_row(driver_id, scored_at, score, trip_id, model_version))

    async def given_policy(self, driver_id: str, number: str, status: str, effective: date,
                           base_premium: Decimal) -> uuid.UUID:
        policy_id = uuid.uuid4()
        await self._insert("policies", policy_row(policy_id, driver_id, number, status, effective, base_premium))
        return policy_id

    async def given_quote(self, event: PremiumQuoted, stream_version: int) -> None:
        async with self.pool.acquire() as conn:
            at = datetime.fromtimestamp(event.occurred_at_ms / 1000, tz=read_models.T0.tzinfo)
            await ensure_for_timestamps(conn, "domain_events", [at])
            await conn.execute(
                "INSERT INTO domain_events (event_id, stream_id, stream_version, event_type, payload, occurred_at)"
                " VALUES ($1, $2, $3, 'premium_quoted', $4::text::jsonb, $5)",
                event.event_id, risk_stream_id(event.driver_id), stream_version, encode_event(event).decode(), at)


    async def given_event(self, stream_version: int, payload_json: str) -> None:
        event = decode_event(payload_json)
        at = datetime.fromtimestamp(event.occurred_at_ms / 1000, tz=read_models.T0.tzinfo)
        async with self.pool.acquire() as conn:
            await ensure_for_timestamps(conn, "domain_events", [at])
            await conn.execute(
                "INSERT INTO domain_events (event_id, stream_id, stream_version, event_type, payload, occurred_at)"
                " VALUES ($1, $2, $3, $4, $5::text::jsonb, $6)",
                event.event_id, event.driver_id, stream_version, event_type(event), payload_json, at)

    async def given_reading(self, driver_id: str, ts: datetime, lat: float, lon: float,
                            event_id: uuid.UUID | None = None) -> None:
        async with self.pool.acquire() as conn:
            await ensure_for_timestamps(conn, "telematics_events", [ts])
            await conn.execute(
                "INSERT INTO telematics_events (event_id, ts, driver_id, event_type, lat, lon, speed_kmh, accel_ms2,"
                " heading) VALUES ($1, $2, $3, 'position', $4, $5, 50, 0, 90)",
                event_id or uuid.uuid4(), ts, driver_id, lat, lon)


@pytest.mark.parametrize("check", read_models.CONTRACT, ids=lambda c: c.__name__)
async def test_the_postgres_read_models_keep_the_read_model_contract(pg, check):
    await check(PostgresWorld(*pg))


@pytest.mark.parametrize("check", admin_store.CONTRACT, ids=lambda c: c.__name__)
async def test_the_postgres_admin_store_keeps_the_admin_store_contract(pg, check):
    settings, pool = pg
    await check(PostgresAdminStore(pool, settings))


@pytest.mark.parametrize("check", device_store.CONTRACT, ids=lambda c: c.__name__)
async def test_the_postgres_device_store_keeps_the_device_store_contract(pg, check):
    settings, pool = pg
    driver = f"dev-{uuid.uuid4().hex[:10]}"
    await pool.execute("INSERT INTO drivers (driver_id, first_name, last_name, email) VALUES ($1, 'D', 'E', $2)",
                       driver, f"{driver}@example.test")
    await check(PostgresDeviceStore(pool, settings), driver)


@pytest.mark.parametrize("check", cache.CONTRACT, ids=lambda c: c.__name__)
async def test_the_redis_backed_cache_keeps_the_cache_contract(base_settings, check):
    settings = api_settings(base_settings, base_settings.database_url)
    redis = create_redis(settings)
    try:
        await check(MultiLevelCache(redis, l1_ttl_s=60, l1_maxsize=1000))
    finally:
        await redis.aclose()


@pytest.mark.parametrize("check", login_throttle.CONTRACT, ids=lambda c: c.__name__)
async def test_the_redis_login_throttle_keeps_the_throttle_contract(base_settings, check):
    redis = create_redis(api_settings(base_settings, base_settings.database_url))
    try:
        await check(RedisLoginThrottle(redis, login_throttle.RULES))
    finally:
        await redis.aclose()
