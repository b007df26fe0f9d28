"""The event store contract (tests/contracts/event_store_contract.py) on PostgresEventStore, in a fresh migrated
database for this module, plus what only PostgreSQL has (the staging path, query counts, partitions)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import pytest

from config.settings import Settings
from storage.postgres.event_store import STAGED_AFTER_DUPLICATE, PostgresEventStore
from storage.postgres.partitions import PartitionCache
from storage.postgres.pool import create_pool, drop_database
from tests.contracts.event_store_builders import batch, items
from tests.contracts.event_store_contract import *  # noqa: F403 - the contract's tests and the `uid` fixture
from tests.integration.fixtures_db import create_migrated_database

# -- fixtures ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def pg_settings(settings: Settings) -> AsyncIterator[Settings]:
    url = await create_migrated_database(settings, prefix="autoins_es")
    try:
        yield settings.with_overrides(database_url=url)
    finally:
        await drop_database(url)


@pytest.fixture(scope="module")
async def pg_pool(pg_settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(pg_settings, application_name="test-event-store", min_size=2, max_size=4)
    try:
        yield pool
    finally:
        await pool.close()


@dataclass
class PostgresBackend:
    """PostgresEventStore with the contract's test hooks, in SQL."""

    store: PostgresEventStore
    pool: asyncpg.Pool
    kind: str = "postgres"

    async def set_timezone(self, driver_id: str, timezone: str) -> None:
        await self.pool.execute(
            "INSERT INTO drivers (driver_id, first_name, last_name, email, timezone) VALUES ($1, 'A', 'B', $2, $3)",
            driver_id,
            f"{driver_id}@example.com",
            timezone,
        )

    async def count_readings(self, driver_id: str) -> int:
        return await self.pool.fetchval("SELECT count(*) FROM telematics_events WHERE driver_id = $1", driver_id)


@pytest.fixture
def backend(pg_pool: asyncpg.Pool) -> PostgresBackend:
    return PostgresBackend(PostgresEventStore(pg_pool, PartitionCache()), pg_pool)


# -- PostgreSQL only --------------------------------------------------------------------------------

async def test_after_a_duplicate_a_few_batches_are_staged_then_the_direct_copy_resumes(pg_pool, uid):
    store = PostgresEventStore(pg_pool)
    driver = f"d-{uid}"
    stored = items(driver, range(10))
    await store.write_batch(batch(f"g-{uid}", stored))
    staged = []
    for n in range(STAGED_AFTER_DUPLICATE + 2):
        fresh = items(driver, range(10 * (n + 1), 10 * (n + 2)))
        repeated = stored[5:] if n == 0 else []  # the first batch repeats 5 stored readings
        result = await store.write_batch(batch(f"g-{uid}", repeated + fresh))
        staged.append(result.readings_staged)
        assert (result.readings_inserted, result.readings_duplicate) == (10, len(repeated))
    assert staged == [True] * (STAGED_AFTER_DUPLICATE + 1) + [False]
    assert await pg_pool.fetchval("SELECT count(*) FROM telematics_events WHERE driver_id = $1", driver) == 10 * (
        STAGED_AFTER_DUPLICATE + 3
    )


async def test_load_drivers_needs_two_queries_whatever_the_number_of_drivers(pg_settings, uid):
    pool = await create_pool(pg_settings, application_name="test-event-store-queries", min_size=1, max_size=1)
    try:
        store = PostgresEventStore(pool)
        drivers = [f"q-{uid}-{i}" for i in range(50)]
        await store.write_batch(batch(f"g-{uid}", [i for d in drivers for i in items(d, range(3))]))
        queries: list[str] = []
        async with pool.acquire() as conn:
            conn.add_query_logger(lambda record: queries.append(record.query))
        # the first use of bigint[] on a connection costs asyncpg one type introspection, once
        await store.load_drivers(drivers[:1])
        for count in (50, 5):
            queries.clear()
            loaded = await store.load_drivers(drivers[:count])
            ours = [q for q in queries if not q.startswith("SELECT pg_advisory_unlock_all")]  # the pool's reset
            assert len(ours) == 2, ours
            assert sum(len(d.readings) for d in loaded.values()) == 3 * count
    finally:
        await pool.close()


async def test_a_cached_month_dropped_behind_the_stores_back_is_created_again(pg_pool, uid):
    store = PostgresEventStore(pg_pool, PartitionCache())
    feb_2020_ms = 1_581_000_000_000  # 2020-02-06
    await store.write_batch(batch(f"g-{uid}", items(f"d-{uid}", [1], ts_of=lambda _o: feb_2020_ms)))
    await pg_pool.execute("DROP TABLE telematics_events_y2020m02")  # e.g. retention, or a restore's cleanup
    result = await store.write_batch(batch(f"g-{uid}", items(f"d-{uid}", [2], ts_of=lambda _o: feb_2020_ms)))
    assert result.readings_inserted == 1
    assert await pg_pool.fetchval("SELECT count(*) FROM telematics_events_y2020m02") == 1

