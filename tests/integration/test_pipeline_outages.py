"""Outages mid-stream: the pipeline waits, resumes and loses nothing (DESIGN.md §2.1).

PostgreSQL: every backend of the test database is terminated again and again for several seconds
(connections die mid-transaction, new ones die at once). Redis: a private redis-server is stopped
for several seconds and started again on the same port.
"""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from pathlib import Path

import asyncpg
import pytest

from autoins.pipeline import durable_messages, start_pipeline, stop_pipeline, wait_until_drained
from autoins.stack import free_tcp_port, stop_process
from autoins.stack.redis_server import start_redis
from storage.redis.client import create_redis
from storage.redis.projections import read_recent
from tests.contracts.projection_builders import newest_position_seq
from tests.integration.pipeline_support import (
    domain_event_set,
    drop,
    key_of,
    make_migrated_database,
    produce,
    stored_counts,
)
from tests.integration.test_pipeline import NOW

pytestmark = pytest.mark.timeout(600)
OUTAGE_S = 4.0


def outage_settings(base_settings, kafka_topics, url: str, **extra):
    return base_settings.with_overrides(
        database_url=url,
        kafka_consumer_group=f"outage-{uuid.uuid4().hex[:8]}",
        kafka_num_consumers=1,
        num_shards=2,
        num_persistence=1,
        consumer_batch_size=1_000,
        db_pool_size=1,
        db_max_overflow=2,
        pipeline_retry_max_s=0.5,
        **kafka_topics,
        **extra,
    )


async def _wait_durable(settings, at_least: int, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while await durable_messages(settings) < at_least:
        if time.monotonic() > deadline:
            raise TimeoutError("no progress before the outage")
        await asyncio.sleep(0.05)


def test_postgresql_going_away_mid_stream_loses_nothing(ray_session, base_settings, kafka_topics, fleet):
    payloads, _ = fleet
    url = asyncio.run(make_migrated_database(base_settings, NOW))
    clean_url = asyncio.run(make_migrated_database(base_settings, NOW))
    try:
        settings = outage_settings(base_settings, kafka_topics, url)
        produce(settings, payloads, [key_of(p) for p in payloads])

        async def with_outage():
            pipeline = start_pipeline(settings, prefix=f"pg{uuid.uuid4().hex[:5]}-")
            try:
                await _wait_durable(settings, len(payloads) // 10)
                admin = await asyncpg.connect(base_settings.database_url)
                terminated = 0
                try:
                    database = url.rsplit("/", 1)[1]
                    stop_at = time.monotonic() + OUTAGE_S
                    while time.monotonic() < stop_at:
                        terminated += await admin.fetchval(
                            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                            "WHERE datname = $1 AND pid <> pg_backend_pid()",
                            database,
                        )
                        await asyncio.sleep(0.02)
                finally:
                    await admin.close()
                during = await durable_messages(settings)
                status = await wait_until_drained(pipeline, len(payloads), timeout_s=180)
                return terminated, during, status
            finally:
                await stop_pipeline(pipeline)

        terminated, durable_after_outage, _status = asyncio.run(with_outage())
        assert terminated > 0, "the outage must have cut live connections"
        assert durable_after_outage < len(payloads), "the outage must land mid-stream"

        clean = outage_settings(base_settings, kafka_topics, clean_url)

        async def clean_run():
            pipeline = start_pipeline(clean, prefix=f"pc{uuid.uuid4().hex[:5]}-")
            try:
                await wait_until_drained(pipeline, len(payloads), timeout_s=180)
            finally:
                await stop_pipeline(pipeline)

        asyncio.run(clean_run())
        counts = asyncio.run(stored_counts(url))
        assert counts["readings"] == counts["distinct_readings"] == len(payloads)
        assert asyncio.run(domain_event_set(url)) == asyncio.run(domain_event_set(clean_url))
    finally:
        drop(url)
        drop(clean_url)


def test_redis_going_away_mid_stream_loses_nothing(ray_session, base_settings, kafka_topics, fleet, tmp_path: Path):
    payloads, _ = fleet
    binary = Path(shutil.which("redis-server") or "/usr/bin/redis-server")
    port = free_tcp_port()
    redis_proc = start_redis("127.0.0.1", port, tmp_path, binary, timeout_s=10)
    url = asyncio.run(make_migrated_database(base_settings, NOW))
    try:
        settings = outage_settings(base_settings, kafka_topics, url, redis_url=f"redis://127.0.0.1:{port}/0")
        produce(settings, payloads, [key_of(p) for p in payloads])

        async def with_outage():
            nonlocal redis_proc
            pipeline = start_pipeline(settings, prefix=f"rd{uuid.uuid4().hex[:5]}-")
            try:
                await _wait_durable(settings, len(payloads) // 10)
                stop_process(redis_proc)
                stalled_at = await durable_messages(settings)
                await asyncio.sleep(OUTAGE_S)
                stalled_until = await durable_messages(settings)
                redis_proc = start_redis("127.0.0.1", port, tmp_path, binary, timeout_s=10)
                status = await wait_until_drained(pipeline, len(payloads), timeout_s=180)
                return stalled_at, stalled_until, status
            finally:
                await stop_pipeline(pipeline)

        stalled_at, stalled_until, status = asyncio.run(with_outage())
        assert stalled_at < len(payloads)
        # Without Redis a batch is not acknowledged: at most the batches already in flight became durable.
        assert stalled_until - stalled_at <= 2 * settings.consumer_batch_size * settings.consumer_max_inflight_batches
        counts = asyncio.run(stored_counts(url))
        assert counts["readings"] == counts["distinct_readings"] == len(payloads)

        async def newest_projected_positions():
            conn = await asyncpg.connect(url)
            rows = await conn.fetch(
                "SELECT DISTINCT ON (driver_id) driver_id, source_offset FROM telematics_events "
                "ORDER BY driver_id, source_offset DESC"
            )
            await conn.close()
            redis = create_redis(settings)
            try:
                return {
                    r["driver_id"]: (r["source_offset"], newest_position_seq(await read_recent(redis, r["driver_id"])))
                    for r in rows
                }
            finally:
                await redis.aclose()

        positions = asyncio.run(newest_projected_positions())
        # Redis came back empty (it keeps nothing on disk): every driver with a batch after that has its
        # position in `ws:recent:{id}` again, at its newest reading — nothing stale, nothing behind. Drivers
        # whose last batch was before the outage have none until their next reading (viewers wait for it).
        projected = {driver: (offset, seq) for driver, (offset, seq) in positions.items() if seq is not None}
        assert len(projected) > len(positions) // 4
        assert all(seq == offset for offset, seq in projected.values())
        assert status["lag"] == 0
    finally:
        stop_process(redis_proc)
        drop(url)
