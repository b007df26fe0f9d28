"""Two ApiGateway replicas each hold a driver's trips page in their cache; a new trip lands (the row, then the
projection's invalidation exactly as the persistence actor publishes it via storage.redis.projections) and both
replicas serve the new trip within the bound, while before the invalidation both still served the cached page."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from ray import serve

from config.names import API_APP
from deployments.builder import API_ROUTE, build_api_app
from domain.batches import LivePosition, NewEvent, ShardOutput
from domain.events import TripEnded, encode_event
from domain.trip_summary import TripSummary
from storage.postgres.pool import connect
from storage.redis.client import create_redis
from storage.redis.projections import publish_batch
from tests.integration.serve_support import (
    bearer,
    driver_token,
    insert_drivers,
    run_driver_ids,
    settings_with_topics,
    wait_for,
)

pytestmark = pytest.mark.timeout(300)
FRESH_WITHIN_S = 2.0  # pub/sub latency plus a request; far below l1_cache_ttl_s, so only invalidation explains it


async def insert_trip(settings, driver_id: str, end: datetime, trip_id: uuid.UUID | None = None) -> uuid.UUID:
    trip_id = trip_id or uuid.uuid4()
    conn = await connect(settings)
    try:
        await conn.execute(
            "INSERT INTO trips (trip_id, driver_id, start_time, end_time, distance_m, duration_s, avg_speed_kmh,"
            " max_speed_kmh, end_reason) VALUES ($1, $2, $3, $4, 12000, 1200, 36, 80, 'ignition_off')",
            trip_id, driver_id, end - timedelta(minutes=20), end)
    finally:
        await conn.close()
    return trip_id


async def project_trip_end(settings, driver_id: str, trip_id: uuid.UUID, end: datetime, seq: int) -> None:
    """What the persistence actor does after committing the batch in which the trip ended."""
    end_ms = int(end.timestamp() * 1000)
    summary = TripSummary(trip_id=trip_id, driver_id=driver_id, start_ms=end_ms - 1_200_000, end_ms=end_ms,
                          distance_m=12000.0, duration_s=1200.0, avg_speed_kmh=36.0, max_speed_kmh=80.0)
    ended = TripEnded(event_id=uuid.uuid4(), driver_id=driver_id, trip_id=trip_id, occurred_at_ms=end_ms,
                      summary=summary)
    event = NewEvent(ended.event_id, driver_id, 1, "trip_ended", end_ms, encode_event(ended), seq)
    live = LivePosition(driver_id, seq, end_ms, 45.0, 7.0, 0.0, 0.0, None)
    redis = create_redis(settings)
    try:
        await publish_batch(redis, [ShardOutput(shard=0, events=[event], trips=[summary], live=[live])])
    finally:
        await redis.aclose()


def trip_ids_by_replica(client: httpx.Client, path: str, headers: dict, timeout_s: float = 30) -> dict[str, list]:
    """The trips page as each of the two replicas serves it (keep asking until both answered)."""
    seen: dict[str, list] = {}
    deadline = time.monotonic() + timeout_s
    while len(seen) < 2 and time.monotonic() < deadline:
        response = client.get(path, headers=headers)
        assert response.status_code == 200, response.text
        seen[response.headers["x-served-by"]] = [item["trip_id"] for item in response.json()["items"]]
    assert len(seen) == 2, f"only {list(seen)} answered"
    return seen


def test_a_new_trip_reaches_both_replicas_cached_pages_within_the_bound(serve_session, migrated_settings,
                                                                       kafka_bootstrap):
    settings = settings_with_topics(migrated_settings, kafka_bootstrap, api_num_replicas=2, l1_cache_ttl_s=300)
    (driver,) = run_driver_ids(1)
    insert_drivers(settings, [driver])
    now = datetime.now(UTC)
    first = str(asyncio.run(insert_trip(settings, driver, now - timedelta(hours=3))))
    serve.run(build_api_app(settings), name=API_APP, route_prefix=API_ROUTE)
    try:
        with httpx.Client(base_url=serve_session, timeout=10) as client:
            path, headers = f"/api/v1/drivers/{driver}/trips", bearer(driver_token(settings, driver))
            assert set(map(tuple, trip_ids_by_replica(client, path, headers).values())) == {(first,)}

            newer_end = now - timedelta(hours=1)
            newer = str(asyncio.run(insert_trip(settings, driver, newer_end)))
            # Written but not yet projected: both replicas still serve their cached page.
            assert set(map(tuple, trip_ids_by_replica(client, path, headers).values())) == {(first,)}

            asyncio.run(project_trip_end(settings, driver, uuid.UUID(newer), newer_end, seq=1))
            published_at = time.monotonic()

            def both_fresh() -> bool:
                pages = trip_ids_by_replica(client, path, headers)
                return all(ids == [newer, first] for ids in pages.values())

            wait_for(both_fresh, FRESH_WITHIN_S, f"both replicas to serve the new trip within {FRESH_WITHIN_S} s",
                     every_s=0.05)
            assert time.monotonic() - published_at < FRESH_WITHIN_S
    finally:
        serve.delete(API_APP)
