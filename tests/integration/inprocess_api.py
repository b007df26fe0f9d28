"""Shared by the REST API tests (authz, queries, cache, schemathesis): a seeded scratch database, the app run
in-process (lifespan included) behind httpx's ASGI transport, a fake risk model, and rows for trips and scores.

Redis isolation: the API's keys are named by driver id (`cache:gen:driver0001`, L2 entries, login
counters), and other test sessions use the same demo ids, so each session uses its own logical Redis
database and bumps the seeded drivers' generations first (an L2 entry left by an earlier run is then
never read)."""

from __future__ import annotations

import math
import os
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import numpy as np
from fastapi import FastAPI

from autoins.seed import ADMIN_PASSWORD, ADMIN_USERNAME, demo_password, seed_demo
from config.settings import Settings
from deployments.api.app import create_app
from domain.features import feature_hash
from domain.risk_assessment import FactorContribution, RiskAssessment, ScoreRequest
from storage.memory.risk_model import FakeRiskModel as SharedFakeRiskModel
from storage.postgres.partitions import ensure_for_timestamps
from storage.postgres.pool import connect, drop_database
from storage.redis.client import create_redis
from storage.redis.keys import generation_key
from tests.contracts.read_models_contract import braking, speeding, stored, trip_ended, trip_started
from tests.contracts.telematics_api_contract import story_types
from tests.integration.fixtures_db import create_migrated_database

BASE_URL = "http://api.test"


class FakeRiskModel(SharedFakeRiskModel):
    """The shared fake (storage.memory.risk_model) with the prior these API tests assert: score 50, band C."""

    def __init__(self, *, available: bool = True) -> None:
        super().__init__(model_version="fake-prior-1", available=available)

    def _one(self, request: ScoreRequest) -> RiskAssessment:
        return RiskAssessment(
            driver_id=request.driver_id,
            model_version="fake-prior-1",
            feature_hash=feature_hash(np.asarray(request.features, dtype=np.float64)),
            score=50.0,
            band="C",
            rate=0.08,
            model_rate=0.08,
            prior_rate=0.08,
            credibility=0.0,
            top_factors=(FactorContribution("trip_count", 0.0),),
        )


def redis_url_for_session(url: str) -> str:
    """The same server, a logical database of this test session's own (1..15)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{1 + os.getpid() % 15}"))


def api_settings(base: Settings, database_url: str, **overrides) -> Settings:
    return base.with_overrides(
        database_url=database_url,
        redis_url=redis_url_for_session(base.redis_url),
        db_pool_size=2,
        db_max_overflow=8,
        cache_warm_budget_s=0,
        **overrides,
    )


async def seeded_database(base: Settings, drivers: int) -> Settings:
    """A migrated scratch database with `autoins seed --drivers N` applied; settings pointing at it."""
    url = await create_migrated_database(base, prefix="autoins_api")
    settings = api_settings(base, url)
    await seed_demo(settings, drivers)
    await bump_generations(settings, [f"driver{n:04d}" for n in range(1, drivers + 1)])
    return settings


async def bump_generations(settings: Settings, driver_ids: list[str]) -> None:
    """Move each driver's cache generation to one no earlier test used: the session's Redis database is shared,
    `driverNNNN` ids recur across seeded databases, and a test that deletes a generation key would otherwise
    restart it at 1, under which another database's cached answers may still live (their TTL). A clock value in
    ns is above any count reached by INCR and above every earlier bump."""
    redis = create_redis(settings)
    try:
        pipe = redis.pipeline(transaction=False)
        for driver_id in driver_ids:
            pipe.set(generation_key(driver_id), time.time_ns())
        await pipe.execute()
    finally:
        await redis.aclose()


async def drop_seeded(settings: Settings) -> None:
    await drop_database(settings.database_url)


@asynccontextmanager
async def running_api(
    settings: Settings, risk: FakeRiskModel | None = None, client_host: str = "127.0.0.1"
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """create_app + its lifespan, and a client speaking to it in-process."""
    app = create_app(settings, risk_model=risk or FakeRiskModel())
    async with app.router.lifespan_context(app), client_for(app, client_host) as client:
        yield app, client


def client_for(app: FastAPI, client_host: str = "127.0.0.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(client_host, 50_000), raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url=BASE_URL)


async def login(client: httpx.AsyncClient, username: str, password: str | None = None) -> str:
    if password is None:
        password = ADMIN_PASSWORD if username == ADMIN_USERNAME else demo_password(username)
    response = await client.post("/api/v1/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def insert_trips(settings: Settings, driver_id: str, count: int, end: datetime | None = None) -> list[uuid.UUID]:
    """`count` one-hour trips ending at `end`, `end` − 2 h, … (newest first in the returned ids)."""
    end = end or datetime.now(UTC)
    ids = [uuid.uuid4() for _ in range(count)]
    conn = await connect(settings)
    try:
        await conn.executemany(
            "INSERT INTO trips (trip_id, driver_id, start_time, end_time, distance_m, duration_s, avg_speed_kmh,"
            " max_speed_kmh, end_reason) VALUES ($1, $2, $3, $4, 20000, 3600, 20, 80, 'ignition_off')",
            [(trip_id, driver_id, end - timedelta(hours=2 * i + 1), end - timedelta(hours=2 * i))
             for i, trip_id in enumerate(ids)],
        )
    finally:
        await conn.close()
    return ids


async def insert_scores(settings: Settings, driver_id: str, scores: list[float], end: datetime | None = None) -> None:
    """Scores ending at `end` (the last in the list is the newest), as the scorer on trip end writes them."""
    end = end or datetime.now(UTC)
    conn = await connect(settings)
    try:
        await conn.executemany(
            "INSERT INTO risk_scores (score_id, driver_id, scored_at, score, band, model_version, feature_hash,"
            " credibility, explanation) VALUES ($1, $2, $3, $4, $5, 'test-model', $6, 0.5, $7)",
            [(uuid.uuid4(), driver_id, end - timedelta(minutes=len(scores) - i), score, "B" if score < 40 else "D",
              secrets.token_hex(8), {"top_factors": [{"name": "night_share", "contribution": 0.12}], "rate": 0.1})
             for i, score in enumerate(scores)],
        )
    finally:
        await conn.close()


async def insert_trip_story(settings: Settings, driver_id: str, trip_id: uuid.UUID, start: datetime, end: datetime,
                            episodes: int, readings: int) -> None:
    """What the pipeline stores for a trip besides its `trips` row: its stream (`trip_started`, `episodes` episodes
    of the `story_types` spread over the trip, the first graded "high", then `trip_ended`, after the driver's
    earlier events) and `readings` position readings from start to end along a winding road. The events'
    `occurred_at` are `start`, the episodes' times and `end` exactly, as the pipeline writes them."""
    span = end - start
    at = [start + span * (i + 1) / (episodes + 1) for i in range(episodes)]
    middle = [speeding(driver_id, trip_id, t) if kind == "speeding" else braking(driver_id, trip_id, t)
              for kind, t in zip(story_types(episodes), at, strict=True)]
    stream = [trip_started(driver_id, trip_id, start), *middle, trip_ended(driver_id, trip_id, start, end)]
    payloads = [stored(e, grade="high") if i == 1 else stored(e) for i, e in enumerate(stream)]
    times = [start + span * i / max(1, readings - 1) for i in range(readings)]
    conn = await connect(settings)
    try:
        await ensure_for_timestamps(conn, "domain_events", [start, end])
        await ensure_for_timestamps(conn, "telematics_events", [start, end])
        head = await conn.fetchval("SELECT coalesce(max(stream_version), 0) FROM domain_events WHERE stream_id = $1",
                                   driver_id)
        await conn.executemany(
            "INSERT INTO domain_events (event_id, stream_id, stream_version, event_type, payload, occurred_at)"
            " VALUES ($1, $2, $3, $4, $5::text::jsonb, $6)",
            [(e.event_id, driver_id, head + 1 + i, e.__struct_config__.tag, payload, when)
             for i, (e, payload, when) in enumerate(zip(stream, payloads, [start, *at, end], strict=True))])
        await conn.executemany(
            "INSERT INTO telematics_events (event_id, ts, driver_id, event_type, lat, lon, speed_kmh, accel_ms2,"
            " heading) VALUES ($1, $2, $3, 'position', $4, $5, 50, 0, 90)",
            [(uuid.uuid4(), ts, driver_id, 45.0 + i * 1e-4, 7.0 + 0.002 * math.sin(i / 25)) for i, ts in
             enumerate(times)])
    finally:
        await conn.close()


async def execute(settings: Settings, sql: str, *args) -> str:
    conn: asyncpg.Connection = await connect(settings)
    try:
        return await conn.execute(sql, *args)
    finally:
        await conn.close()


async def open_claim(settings: Settings, driver_id: str, at: datetime | None = None) -> uuid.UUID:
    """A crash of `driver_id` written as the pipeline writes it (PostgresEventStore.write_batch, next stream
    version), which opens its claim; returns the claim id."""
    from domain.claims import claim_id
    from storage.postgres.event_store import PostgresEventStore
    from storage.postgres.pool import create_pool
    from tests.contracts.claims_contract import crash_event
    from tests.contracts.event_store_builders import batch

    at_ms = int((at or datetime.now(UTC)).timestamp() * 1000)
    pool = await create_pool(settings, application_name="test-open-claim", min_size=1, max_size=1)
    try:
        store = PostgresEventStore(pool)
        crash = crash_event(driver_id, await store.stream_head(driver_id) + 1, at_ms)
        await store.write_batch(batch(f"claims-{driver_id}", events=[crash]))
    finally:
        await pool.close()
    return claim_id(crash.event_id)
