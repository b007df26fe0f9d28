"""Scoring on trip end, end to end on real Kafka, PostgreSQL, Redis, Ray and Serve (docs/SCORING.md).

The pipeline ingests a simulated fleet; the RiskScorer scores every trip end, once, in trip order per driver,
through the RiskModel deployment (a small artifact trained into tmp); the results must be in PostgreSQL (risk
stream events, risk_scores, repriced policies) and Redis (live messages, cache generations), written once.
Driver ids are renamed per test so runs sharing the Redis server never see each other's keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import asyncpg
import httpx
import msgspec
import pytest
import websockets
from pydantic import SecretStr

from actors.risk_scorer import RiskScorer
from autoins.pipeline import pipeline_status, start_pipeline, stop_pipeline, wait_until_drained
from config.names import RISK_APP, WS_APP
from config.rules import rules_in_force
from config.settings import Settings
from deployments.ws_protocol import client_subprotocols
from domain.events import PremiumQuoted, RiskScored, decode_event
from domain.features import FEATURE_NAMES, driver_features
from domain.risk_assessment import ScoreRequest
from domain.scoring import EndedTrip, risk_stream_id, window_start_ms, window_trips
from domain.trip_summary import TripSummary
from storage.postgres.drivers import NewDriver, insert_missing_drivers
from storage.postgres.event_store import insert_trips
from storage.postgres.pool import create_pool
from storage.postgres.score_store import PostgresScoreStore
from storage.redis.client import create_redis
from storage.redis.keys import INVALIDATE_CHANNEL, driver_channel, generation_key, recent_key
from storage.serve.risk_model import ServeRiskModel
from tests.integration.pipeline_support import drop, key_of, make_migrated_database, produce
from usecases.ports.risk_model import prior_request
from usecases.ports.score_store import TripSpan

pytestmark = pytest.mark.timeout(600)
NOW = datetime.now(UTC)
INITIAL_PREMIUM = Decimal("600.00")
RULES_VERSION = rules_in_force(Settings()).version  # the scorer's: default pricing, detectors and scoring terms


# -- the model ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained_models_dir(tmp_path_factory, base_settings) -> Path:
    """A small real artifact (H1's training code), trained once for the module (~3 s)."""
    return train_into(tmp_path_factory.mktemp("models"), seed=3, signing_key=base_settings.model_signing_key)


@pytest.fixture(scope="module")
def second_models_dir(tmp_path_factory, base_settings) -> Path:
    """Another model version (another seed), to switch to."""
    return train_into(tmp_path_factory.mktemp("models2"), seed=5, signing_key=base_settings.model_signing_key)


def train_into(models_dir: Path, seed: int, signing_key: SecretStr) -> Path:
    """A small artifact signed with `signing_key` (that of the settings the test deploys with)."""
    from domain.risk_model.dataset import DatasetSpec, build_dataset
    from domain.risk_model.spec import TrainingParams
    from domain.risk_model.training import train
    from storage.files.model_artifacts import save_artifact

    data = build_dataset(DatasetSpec(seed=seed, drivers=40, days=1))
    result = train(data, TrainingParams(seed=seed, gbm_max_iter=30), {"drivers": 40.0, "days": 1.0})
    save_artifact(models_dir, result.spec, result.estimator, created_at="2026-01-01T00:00:00Z",
                  signing_key=signing_key)
    return models_dir


class RiskApp:
    """The `risk` app (H1's RiskModel) for this module. Deploying it fresh without an artifact gives a replica
    that is up but not ready (`ModelNotReady`); switching it to the trained artifact changes only the
    user_config, so the replica loads it in place (`reconfigure`). A failed reload keeps the current model,
    so "not ready" exists only before the first load. Deleting or replacing a replica costs a 30 s drain
    behind the HAProxy ingress: the module does it at most at its start and end."""

    def __init__(self, settings, empty_dir: Path, trained_dir: Path) -> None:
        self.settings, self.empty_dir, self.trained_dir = settings, empty_dir, trained_dir

    def missing(self) -> None:
        from ray import serve

        serve.delete(RISK_APP)

    def deploy(self, models_dir: Path) -> None:
        from ray import serve

        from deployments.risk_model import build_risk_app

        app = build_risk_app(self.settings, user_config={"models_dir": str(models_dir)})
        serve.run(app, name=RISK_APP, route_prefix=None)

    def not_ready(self) -> None:
        self.deploy(self.empty_dir)

    def ready(self) -> None:
        self.deploy(self.trained_dir)


@pytest.fixture(scope="module")
def risk_app(serve_session, base_settings, trained_models_dir, tmp_path_factory):
    from ray import serve

    empty = tmp_path_factory.mktemp("no-models")
    app = RiskApp(base_settings.with_overrides(models_dir=empty, model_version=None), empty, trained_models_dir)
    yield app
    # both apps drain (30 s each behind HAProxy) at the same time
    for name in (RISK_APP, WS_APP):
        serve.delete(name, _blocking=False)
    deadline = time.monotonic() + 90
    while {RISK_APP, WS_APP} & set(serve.status().applications) and time.monotonic() < deadline:
        time.sleep(0.5)


async def model_version() -> str:
    """The version the deployment serves: the one the prior of a driver without trips is assessed with."""
    return (await ServeRiskModel().assess(prior_request("nobody"))).model_version


# -- data ----------------------------------------------------------------------------------------------------


@pytest.fixture
def scoring_settings(base_settings, kafka_topics):
    url = asyncio.run(make_migrated_database(base_settings, NOW))
    settings = base_settings.with_overrides(
        database_url=url,
        kafka_consumer_group=f"scoring-{uuid.uuid4().hex[:8]}",
        kafka_partitions=4,
        consumer_batch_size=5_000,
        num_shards=2,
        num_persistence=1,
        kafka_num_consumers=1,
        db_pool_size=1,
        db_max_overflow=2,
        **kafka_topics,
    )
    yield settings
    drop(url)


def renamed(payloads: list[bytes], tag: str, drivers: set[str] | None = None) -> list[bytes]:
    """The fleet's readings with driver ids `driverNNNN` → `<tag>-NNNN` (only `drivers`, if given)."""
    chosen = payloads if drivers is None else [p for p in payloads if key_of(p).decode() in drivers]
    return [p.replace(b'"driver_id":"driver', f'"driver_id":"{tag}-'.encode()) for p in chosen]


async def seed_drivers(url: str, driver_ids: list[str], without_policy: set[str]) -> None:
    conn = await asyncpg.connect(url)
    try:
        await insert_missing_drivers(
            conn, [NewDriver(d, "Test", d, f"{d}@example.test", "Europe/Lisbon") for d in driver_ids]
        )
        with_policy = [d for d in driver_ids if d not in without_policy]
        await conn.execute(
            """INSERT INTO policies (policy_id, driver_id, policy_number, status, base_premium, current_premium,
                                     per_km_rate, currency, effective_date, expiration_date)
               SELECT gen_random_uuid(), d, 'P-' || d, 'active', $2, $2, 0.02, 'EUR', date '2026-01-01',
                      date '2027-01-01'
               FROM unnest($1::text[]) AS d""",
            with_policy,
            INITIAL_PREMIUM,
        )
    finally:
        await conn.close()


async def latest_trips(url: str) -> dict[str, tuple[uuid.UUID, int]]:
    """driver → (trip_id, end_ms) of their latest trip."""
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            """SELECT DISTINCT ON (driver_id) driver_id, trip_id, (extract(epoch FROM end_time) * 1000)::bigint AS e
               FROM trips ORDER BY driver_id, end_time DESC, trip_id DESC"""
        )
    finally:
        await conn.close()
    return {r["driver_id"]: (uuid.UUID(str(r["trip_id"])), r["e"]) for r in rows}


async def fetch(url: str, query: str, *args) -> list:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


async def scored_trip_ids(url: str) -> set[uuid.UUID]:
    return {uuid.UUID(str(r["trip_id"])) for r in await fetch(url, "SELECT trip_id FROM risk_scores")}


async def all_trips(url: str) -> dict[str, list[tuple[uuid.UUID, int]]]:
    """driver → [(trip_id, end_ms)] in trip order (end time, then trip id)."""
    rows = await fetch(
        url,
        """SELECT driver_id, trip_id, (extract(epoch FROM end_time) * 1000)::bigint AS e FROM trips
           ORDER BY driver_id, end_time, trip_id""",
    )
    out: dict[str, list[tuple[uuid.UUID, int]]] = {}
    for r in rows:
        out.setdefault(r["driver_id"], []).append((uuid.UUID(str(r["trip_id"])), r["e"]))
    return out


async def wait_for(check: Callable[[], Awaitable[bool]], timeout_s: float, what: str, poll_s: float = 0.25) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(poll_s)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


async def risk_events(url: str, driver_id: str) -> list:
    rows = await fetch(
        url,
        "SELECT stream_version, payload::text AS p FROM domain_events WHERE stream_id = $1 ORDER BY stream_version",
        risk_stream_id(driver_id),
    )
    assert [r["stream_version"] for r in rows] == list(range(1, len(rows) + 1))
    return [decode_event(r["p"]) for r in rows]


async def table_counts(url: str) -> dict:
    rows = await fetch(
        url,
        """SELECT (SELECT count(*) FROM risk_scores) AS scores,
                  (SELECT count(*) FROM domain_events WHERE stream_id LIKE 'risk:%') AS events,
                  (SELECT string_agg(policy_id || ':' || current_premium || ':' || updated_at, ',' ORDER BY policy_id)
                   FROM policies) AS policies""",
    )
    return dict(rows[0])


async def scorer_idle(scorer, rounds: int) -> dict:
    stats = await scorer.stats.remote()
    return stats if stats["rounds"] >= rounds and stats["pending"] == 0 else {}


# -- tests ---------------------------------------------------------------------------------------------------


def test_trips_scored_nowhere_while_the_model_is_away_are_caught_up_and_scored_once_it_is_there(
    ray_session, risk_app, scoring_settings, fleet
):
    """Model missing (no app), the pipeline's scorer dies with its pending drivers; a new scorer's catch-up
    finds them while the model is deployed but not ready, keeps them, and scores them once it is ready."""
    settings = scoring_settings
    tag = f"c{secrets.token_hex(3)}"
    payloads = renamed(fleet[0], tag, {f"driver{n:04d}" for n in range(1, 9)})
    drivers = sorted({key_of(p).decode() for p in payloads})
    asyncio.run(seed_drivers(settings.database_url, drivers, set()))
    risk_app.missing()

    async def scenario() -> None:
        url = settings.database_url
        pipeline = start_pipeline(settings, prefix=f"{uuid.uuid4().hex[:6]}-")
        try:
            produce(settings, payloads, [key_of(p) for p in payloads])
            await wait_until_drained(pipeline, len(payloads), timeout_s=120)
            trips = await latest_trips(url)
            every = {t for ts in (await all_trips(url)).values() for t, _ in ts}
            assert trips and len(every) > len(trips), "drivers should have several trips each"

            async def held() -> bool:
                stats = await pipeline.scorer.stats.remote()
                return stats["model_unavailable"] >= 1 and stats["pending"] == len(trips)

            await wait_for(held, 30, "the scorer to hold every driver while the model is missing")
        finally:
            await stop_pipeline(pipeline)  # the scorer dies with its pending work
        assert await scored_trip_ids(url) == set()

        await asyncio.to_thread(risk_app.not_ready)
        scorer = RiskScorer.remote(settings, max_backoff_s=1.0)
        run = scorer.run.remote()
        try:

            async def found_but_not_ready() -> bool:
                stats = await scorer.stats.remote()
                return stats["catchup_found"] == len(every) and stats["model_unavailable"] >= 1

            await wait_for(found_but_not_ready, 30, "the catch-up to find every unscored trip, the model not ready")
            assert "ModelNotReady" in (await scorer.stats.remote())["last_error"]
            assert await scored_trip_ids(url) == set()

            await asyncio.to_thread(risk_app.ready)

            async def caught_up() -> bool:
                return every <= await scored_trip_ids(url)

            await wait_for(caught_up, 60, "every trip to be scored")
            stats = await scorer.stats.remote()
        finally:
            await finish(scorer, run)
        assert stats["catchup_found"] == len(every) and stats["scored"] == len(every) and stats["pending"] == 0
        rows = await fetch(url, "SELECT trip_id FROM risk_scores")
        assert len(rows) == len(every), "one score per trip end"
        policies = await fetch(url, "SELECT driver_id, current_premium, last_band FROM policies")
        assert {r["driver_id"] for r in policies if r["last_band"] is not None} == set(trips)

    asyncio.run(scenario())


def test_every_driver_with_a_trip_is_scored_once_priced_within_the_cap_and_projected(
    ray_session, serve_session, risk_app, scoring_settings, fleet, second_models_dir
):
    settings = scoring_settings
    tag = f"s{secrets.token_hex(3)}"
    payloads = renamed(fleet[0], tag)
    drivers = sorted({key_of(p).decode() for p in payloads})
    without_policy = set(drivers[:3])
    asyncio.run(seed_drivers(settings.database_url, drivers, without_policy))
    risk_app.ready()
    from ray import serve

    from deployments.builder import WS_ROUTE, build_ws_app

    serve.run(build_ws_app(settings), name=WS_APP, route_prefix=WS_ROUTE)  # H3's LiveGateway, this database
    ws_url = serve_session.replace("http://", "ws://") + WS_ROUTE

    async def scenario() -> None:
        redis = create_redis(settings)
        pubsub = redis.pubsub()
        await pubsub.psubscribe(driver_channel(f"{tag}-*"))
        heard: list[dict] = []

        async def listen() -> None:
            async for message in pubsub.listen():
                if message["type"] == "pmessage":
                    heard.append(msgspec.json.decode(message["data"]))

        listener = asyncio.create_task(listen())
        try:
            async with api_client(settings) as api:
                await run_and_check(settings, payloads, without_policy, redis, heard, api)
                await check_new_model_version_is_scored_and_invalidates_caches(
                    settings, redis, risk_app, second_models_dir, ws_url
                )
        finally:
            listener.cancel()
            await pubsub.aclose()
            await redis.aclose()

    asyncio.run(scenario())


async def run_and_check(
    settings, payloads: list[bytes], without_policy: set[str], redis, heard: list[dict], api: httpx.AsyncClient
) -> None:
    """Ingest, wait for every trip to be scored, then check every projection."""
    url = settings.database_url
    drivers = sorted({key_of(p).decode() for p in payloads})
    for driver in drivers:  # before any trip: the prior, now cached by the API (L1 and L2)
        before = await score_as(api, settings, driver)
        assert (before["source"], before["credibility"], before["trip_id"]) == ("prior", 0.0, None)
    pipeline = start_pipeline(settings, prefix=f"{uuid.uuid4().hex[:6]}-")
    try:
        produce(settings, payloads, [key_of(p) for p in payloads])
        await wait_until_drained(pipeline, len(payloads), timeout_s=180)
        trips = await latest_trips(url)
        assert len(trips) >= 10, "the fleet should end trips for many drivers"
        every = await all_trips(url)
        wanted = {trip for ts in every.values() for trip, _ in ts}

        async def all_scored() -> bool:
            return wanted <= await scored_trip_ids(url)

        await wait_for(all_scored, 60, "a score for every trip")
        status = await pipeline.scorer.stats.remote()
        assert status["scored"] == len(wanted) and status["scores_inserted"] == len(wanted)
        assert status["events_inserted"] == len(wanted) + sum(
            len(ts) for d, ts in every.items() if d not in without_policy
        )
        assert status["model_unavailable"] == 0 and status["errors"] == 0
    finally:
        await stop_pipeline(pipeline)

    version = await model_version()
    await check_postgres(url, every, without_policy, version)
    await check_redis(redis, every, heard)
    await check_api(api, settings, trips, version)
    await check_rescoring_writes_nothing(settings, redis, trips)
    await check_scores_are_reproducible(settings, every, version)


async def check_postgres(url: str, every: dict, without_policy: set[str], version: str) -> None:
    """One score per trip end, in trip order in the driver's risk stream, the premium chained through them."""
    rows = await fetch(
        url,
        "SELECT driver_id, trip_id, score, band, model_version, credibility, rules_version, explanation::text "
        "AS explanation, (extract(epoch FROM scored_at) * 1000)::bigint AS at FROM risk_scores",
    )
    by_trip = {r["trip_id"]: r for r in rows}
    assert len(by_trip) == len(rows) == sum(len(ts) for ts in every.values()), "one score per trip"
    policies = {r["driver_id"]: r for r in await fetch(url, "SELECT * FROM policies")}
    for driver, trips in every.items():
        for trip_id, end_ms in trips:
            row = by_trip[trip_id]
            assert (row["driver_id"], row["model_version"], row["at"]) == (driver, version, end_ms)
            assert 0 <= row["credibility"] <= 1 and 0 <= row["score"] <= 100
            explanation = msgspec.json.decode(row["explanation"])
            assert set(explanation) == {"top_factors", "rate", "model_rate", "prior_rate", "features"}
            assert set(explanation["features"]) == set(FEATURE_NAMES)  # the model input by name (jsonb: any order)
            assert row["rules_version"] == RULES_VERSION  # the scorer records the rules in force with each score

        events = await risk_events(url, driver)
        scored = [e for e in events if isinstance(e, RiskScored)]
        quoted = [e for e in events if isinstance(e, PremiumQuoted)]
        assert [(e.trip_id, e.occurred_at_ms) for e in scored] == trips, "every trip once, in trip order"
        last = by_trip[trips[-1][0]]
        assert scored[-1].score == pytest.approx(float(last["score"]), abs=0.005) and scored[-1].band == last["band"]
        assert len({e.event_id for e in events}) == len(events)
        if driver in without_policy:
            assert quoted == [] and driver not in policies
            continue
        assert [e.trip_id for e in quoted] == [e.trip_id for e in scored], "one quote per score"
        previous = INITIAL_PREMIUM
        for q in quoted:  # a chain: each quote starts where the previous one left the policy
            assert q.previous_premium == previous
            assert previous * Decimal("0.85") <= q.premium <= previous * Decimal("1.15")
            previous = q.premium
        policy = policies[driver]
        assert policy["current_premium"] == quoted[-1].premium
        assert (float(policy["last_score"]), policy["last_band"]) == (float(last["score"]), last["band"])


async def check_redis(redis, every: dict, heard: list[dict]) -> None:
    """Every trip's `risk_scored` heard once on `ws:driver:{id}`, a driver's in trip order; the latest held once
    in `ws:recent:{id}` (older ones may be trimmed behind newer positions); no `driver:{id}:score` key."""
    for driver, trips in every.items():
        mine = [m["payload"]["trip_id"] for m in heard if m["type"] == "risk_scored" and m["driver_id"] == driver]
        assert mine == [str(t) for t, _ in trips], f"risk_scored messages of {driver}"
        recent = [msgspec.json.decode(m) for m in await redis.zrange(recent_key(driver), 0, -1)]
        latest = str(trips[-1][0])
        held = [m for m in recent if m["type"] == "risk_scored" and m["payload"]["trip_id"] == latest]
        assert len(held) == 1 and held[0]["seq"] >= 0
        assert await redis.exists(f"driver:{driver}:score") == 0  # a key deleted in issue 10: never written again
    kinds = {m["type"] for m in heard}
    assert {"risk_scored", "premium_quoted", "position", "trip_ended"} <= kinds


@contextlib.asynccontextmanager
async def api_client(settings) -> AsyncIterator[httpx.AsyncClient]:
    """H2's API app in-process (its lifespan: pool, Redis, L1/L2 cache and its `cache:invalidate` listener)."""
    from deployments.api.app import create_app

    app = create_app(settings)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://api") as c:
        yield c


async def score_as(api: httpx.AsyncClient, settings, driver_id: str) -> dict:
    token = driver_token(settings, driver_id)
    response = await api.get("/api/v1/risk/me/score", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    return response.json()


async def check_api(api: httpx.AsyncClient, settings, trips: dict, version: str) -> None:
    """`GET /api/v1/risk/me/score` as each driver: the new score, not the prior the API cached before (the
    scorer bumped `cache:gen:{id}` and published `cache:invalidate`)."""
    rows = {r["driver_id"]: r for r in await fetch(settings.database_url, "SELECT * FROM risk_scores")}
    for driver, (trip_id, _end_ms) in trips.items():
        body = await score_as(api, settings, driver)
        latest = await fetch(
            settings.database_url,
            "SELECT score, credibility FROM risk_scores WHERE trip_id = $1",
            trip_id,
        )
        assert driver in rows
        assert (body["source"], body["trip_id"], body["model_version"]) == ("scored", str(trip_id), version)
        assert body["score"] == float(latest[0]["score"])
        assert body["credibility"] == pytest.approx(latest[0]["credibility"], rel=1e-6) and body["credibility"] > 0


async def add_next_trips(url: str, trips: dict) -> list[EndedTrip]:
    """One more trip per driver, ending after its latest (as if ingested), with offsets above any stored."""
    new = [
        TripSummary(
            trip_id=uuid.uuid5(trip_id, "next"),
            driver_id=driver,
            start_ms=end_ms + 600_000,
            end_ms=end_ms + 2_400_000,
            distance_m=15_000.0,
            duration_s=1_800.0,
            avg_speed_kmh=30.0,
            max_speed_kmh=70.0,
            harsh_braking_count=1,
        )
        for driver, (trip_id, end_ms) in sorted(trips.items())
    ]
    conn = await asyncpg.connect(url)
    try:
        await insert_trips(conn, new)
    finally:
        await conn.close()
    return [EndedTrip(t.driver_id, t.trip_id, t.end_ms, 10**9 + i) for i, t in enumerate(new)]


async def check_new_model_version_is_scored_and_invalidates_caches(
    settings, redis, risk_app, models_dir: Path, ws_url: str
) -> None:
    """A new model version: trips already scored stay scored by the old one (each trip end is scored once),
    the next trips are scored by the new one (new ids); with nothing else touching these drivers, the scorer
    alone bumps each driver's `cache:gen` once and tells every API replica which drivers changed
    (`cache:invalidate`). A driver watching the WebSocket sees the new `risk_scored` live; one resuming with
    `?since=` gets it from the backlog."""
    url = settings.database_url
    trips = await latest_trips(url)
    old_version = await model_version()
    await asyncio.to_thread(risk_app.deploy, models_dir)
    new_version = await model_version()
    assert new_version != old_version
    generations = {d: int(await redis.get(generation_key(d)) or 0) for d in trips}
    pubsub = redis.pubsub()
    await pubsub.subscribe(INVALIDATE_CHANNEL)
    before = await fetch(url, "SELECT score_id, trip_id, model_version FROM risk_scores")
    nexts = await add_next_trips(url, trips)
    resubmitted = [EndedTrip(d, t, e, 0) for d, (t, e) in trips.items()]
    viewer_id = sorted(trips)[-1]
    viewer = await websockets.connect(f"{ws_url}/drivers/{viewer_id}",
                                      subprotocols=client_subprotocols(driver_token(settings, viewer_id)))
    assert (await next_ws_message(viewer))["type"] == "hello"
    try:
        stats = await score_once(settings, [*resubmitted, *nexts])

        def new_score(m: dict) -> bool:
            return m["type"] == "risk_scored" and m["payload"]["model_version"] == new_version

        live = await next_ws_message(viewer, new_score)
        assert live["payload"]["trip_id"] == str(next(t.trip_id for t in nexts if t.driver_id == viewer_id))
        token = driver_token(settings, viewer_id)
        async with websockets.connect(f"{ws_url}/drivers/{viewer_id}?since={live['seq'] - 1}",
                                      subprotocols=client_subprotocols(token)) as late:
            assert await next_ws_message(late, new_score) == live
        invalidated: set[str] = set()
        deadline = time.monotonic() + 5
        while invalidated != set(trips) and time.monotonic() < deadline:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
            if message is not None and (body := msgspec.json.decode(message["data"]))["type"] == "drivers_changed":
                invalidated |= {d for d in body["driver_ids"] if d in trips}
    finally:
        await pubsub.aclose()
        await viewer.close()
    assert stats["scores_inserted"] == stats["scored"] == len(nexts) and stats["rounds"] == 1
    assert invalidated == set(trips)
    assert {d: int(await redis.get(generation_key(d))) for d in trips} == {d: g + 1 for d, g in generations.items()}
    after = await fetch(url, "SELECT score_id, trip_id, model_version FROM risk_scores")
    assert {tuple(r) for r in before} < {tuple(r) for r in after}, "earlier scores untouched"
    fresh = {r["trip_id"]: r["model_version"] for r in after}
    for trip in nexts:
        assert fresh[trip.trip_id] == new_version
    assert len(after) == len(before) + len(nexts)


def driver_token(settings, driver_id: str) -> str:
    from deployments.api.auth import issue_token

    return issue_token(settings, user_id=f"user-{driver_id}", role="driver", driver_id=driver_id)


async def next_ws_message(ws, accept: Callable[[dict], bool] = lambda m: True, timeout_s: float = 10.0) -> dict:
    """The next message `accept`s (heartbeats and others skipped) within `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        message = msgspec.json.decode(await asyncio.wait_for(ws.recv(), max(0.01, deadline - time.monotonic())))
        if message["type"] != "heartbeat" and accept(message):
            return message


async def check_rescoring_writes_nothing(settings, redis, trips: dict) -> None:
    """A second scorer given the same trips again: they are scored already, so nothing new in PostgreSQL and
    nothing published."""
    url = settings.database_url
    before = await table_counts(url)
    recent_before = {d: await redis.zrange(recent_key(d), 0, -1) for d in trips}
    again = [EndedTrip(driver, trip_id, end_ms, 0) for driver, (trip_id, end_ms) in trips.items()]
    stats = await score_once(settings, again)
    assert (stats["scored"], stats["catchup_found"], stats["rounds"]) == (0, 0, 1)
    assert (stats["scores_inserted"], stats["events_inserted"], stats["policies_updated"]) == (0, 0, 0)
    assert await table_counts(url) == before
    assert {d: await redis.zrange(recent_key(d), 0, -1) for d in trips} == recent_before


async def check_scores_are_reproducible(settings, every: dict, version: str) -> None:
    """Features recomputed from the stored trips (each trip's window), scored again through the deployment:
    same score, same hash, for every trip of a few drivers."""
    window_days = settings.scoring_window_days
    chosen = sorted(every)[:5]
    pool = await create_pool(settings, min_size=1, max_size=1)
    try:
        spans = [TripSpan(d, window_start_ms(every[d][0][1], window_days), every[d][-1][1]) for d in chosen]
        inputs = await PostgresScoreStore(pool).load_inputs(spans)
    finally:
        await pool.close()
    requests = [
        ScoreRequest(
            driver_id=d,
            features=tuple(
                driver_features(window_trips(inputs.trips[d], end_ms, window_days), window_days).to_vector().tolist()
            ),
        )
        for d in chosen
        for _, end_ms in every[d]
    ]
    model = ServeRiskModel()
    first = await model.assess_many(requests)
    second = await model.assess_many(list(reversed(requests)))
    assert first == list(reversed(second))
    stored = [e for d in chosen for e in await risk_events(settings.database_url, d) if isinstance(e, RiskScored)]
    assert len(stored) == len(first)
    for assessment, event in zip(first, stored, strict=True):
        assert event.model_version == assessment.model_version == version
        assert (event.feature_hash, event.score, event.rate) == (
            assessment.feature_hash,
            assessment.score,
            assessment.rate,
        )


async def score_once(settings, trips: list[EndedTrip]) -> dict:
    """A scorer of its own (no catch-up) scores `trips` in one round; returns its counters."""
    scorer = RiskScorer.remote(settings, catchup_every_s=3600)
    run = scorer.run.remote()
    try:
        await scorer.submit.remote(trips)
        await wait_for(lambda: _truthy(scorer_idle(scorer, 1)), 60, "a scoring round")
        return await scorer.stats.remote()
    finally:
        await finish(scorer, run)


async def finish(scorer, run) -> None:
    """Stop a scorer this test started: its loop, its pools, its process."""
    import ray

    await scorer.stop.remote()
    await asyncio.wait([asyncio.ensure_future(run)], timeout=30)
    await scorer.shutdown.remote()
    ray.kill(scorer, no_restart=True)


async def _truthy(awaitable) -> bool:
    return bool(await awaitable)


def test_a_trip_cut_off_at_90_kmh_is_closed_by_silence_stored_and_scored(ray_session, risk_app, scoring_settings):
    """Issue 12: a phone stops recording mid-drive (no ignition_off, then silence). Other devices in the same
    partition move its log time past `gap_s`; the trip ends as `device_silent` at its last reading, is stored
    with that reason, and is scored."""
    from domain.readings import Reading, ReadingType
    from domain.rules import TripRules
    from domain.validation import encode_reading

    settings = scoring_settings
    tag = f"q{secrets.token_hex(3)}"
    cut, others = f"{tag}-cut", [f"{tag}-other{n}" for n in range(3)]
    asyncio.run(seed_drivers(settings.database_url, [cut, *others], set()))
    risk_app.ready()
    start = int(NOW.timestamp() * 1000) - 3 * 3600_000
    gap_ms = int(TripRules().gap_s * 1000)  # what the shards use (actors/common.py)

    def reading(driver: str, ts_ms: int, speed: float, kind=ReadingType.POSITION) -> bytes:
        east = (ts_ms - start) / 1000 * speed / 3.6
        return encode_reading(Reading(event_id=uuid.uuid5(uuid.NAMESPACE_URL, f"{driver}/{ts_ms}"), driver_id=driver,
                                      ts_ms=ts_ms, type=kind, lat=38.7, lon=-9.1 + east / 87_000, speed_kmh=speed,
                                      accel_ms2=0.0, heading=90.0))

    drive = [reading(cut, start, 0.0, ReadingType.IGNITION_ON)]
    drive += [reading(cut, start + s * 1000, 90.0) for s in range(1, 601)]  # 10 min at 90 km/h, then nothing
    filler = [reading(d, start + s * 20_000, 40.0) for s in range(1, (600_000 + gap_ms) // 20_000 + 20)
              for d in others]
    payloads = sorted(drive + filler, key=lambda p: msgspec.json.decode(p)["ts"])
    last_ms = start + 600_000

    async def scenario() -> None:
        url = settings.database_url
        pipeline = start_pipeline(settings, prefix=f"{uuid.uuid4().hex[:6]}-")
        try:
            # one key for all: one partition, so the others' readings are the cut driver's log time
            produce(settings, payloads, [cut.encode()] * len(payloads))
            await wait_until_drained(pipeline, len(payloads), timeout_s=120)
            rows = await fetch(url, "SELECT trip_id, end_reason, (extract(epoch FROM end_time) * 1000)::bigint AS e,"
                                    " distance_m FROM trips WHERE driver_id = $1", cut)
            assert len(rows) == 1, rows
            assert (rows[0]["end_reason"], rows[0]["e"]) == ("device_silent", last_ms)
            assert rows[0]["distance_m"] > 14_000
            trip_id = uuid.UUID(str(rows[0]["trip_id"]))

            async def scored() -> bool:
                return trip_id in await scored_trip_ids(url)

            await wait_for(scored, 60, "the cut-off trip to be scored")
        finally:
            await stop_pipeline(pipeline)

    asyncio.run(scenario())


def test_a_lone_phone_cut_off_at_speed_gets_its_trip_once_log_ticks_carry_time_on(ray_session, risk_app,
                                                                                   scoring_settings):
    """Issue 12, as the phones recorded it: the recording ends with an ignition_off at 90 km/h and then silence,
    and no other device writes to that partition. The consumer writes log ticks into the idle partition, the
    ignition_off leaves the reorder buffer, and the trip ends there, flagged, and is scored."""
    from domain.readings import Reading, ReadingType
    from domain.trip_machine import IGNITION_OFF_WHILE_MOVING
    from domain.validation import encode_reading

    settings = scoring_settings.with_overrides(log_tick_idle_s=1.0)
    driver = f"l{secrets.token_hex(3)}-phone"
    asyncio.run(seed_drivers(settings.database_url, [driver], set()))
    risk_app.ready()
    start = int(NOW.timestamp() * 1000) - 3600_000

    def reading(ts_ms: int, speed: float, kind=ReadingType.POSITION) -> bytes:
        east = (ts_ms - start) / 1000 * speed / 3.6
        return encode_reading(Reading(event_id=uuid.uuid5(uuid.NAMESPACE_URL, f"{driver}/{ts_ms}"), driver_id=driver,
                                      ts_ms=ts_ms, type=kind, lat=38.7, lon=-9.1 + east / 87_000, speed_kmh=speed,
                                      accel_ms2=0.0, heading=None if kind is ReadingType.IGNITION_ON else 90.0))

    payloads = [reading(start, 0.0, ReadingType.IGNITION_ON)]
    payloads += [reading(start + s * 1000, 90.0) for s in range(1, 301)]
    payloads += [reading(start + 301_000, 90.0, ReadingType.IGNITION_OFF)]

    async def scenario() -> None:
        url = settings.database_url
        pipeline = start_pipeline(settings, prefix=f"{uuid.uuid4().hex[:6]}-")
        try:
            produce(settings, payloads, [driver.encode()] * len(payloads))
            await wait_until_drained(pipeline, len(payloads), timeout_s=120)

            async def trip_ended() -> bool:
                return bool(await fetch(url, "SELECT 1 FROM trips WHERE driver_id = $1", driver))

            await wait_for(trip_ended, 60, "log ticks to release the trailing ignition_off")
            (row,) = await fetch(url, "SELECT trip_id, end_reason, quality_flags,"
                                      " (extract(epoch FROM end_time) * 1000)::bigint AS e FROM trips"
                                      " WHERE driver_id = $1", driver)
            assert (row["end_reason"], row["e"]) == ("ignition_off", start + 301_000)
            assert list(row["quality_flags"]) == [IGNITION_OFF_WHILE_MOVING]
            trip_id = uuid.UUID(str(row["trip_id"]))

            async def scored() -> bool:
                return trip_id in await scored_trip_ids(url)

            await wait_for(scored, 60, "the trip to be scored")
            status = await pipeline_status(pipeline)
            assert sum(c["log_ticks"] for c in status["consumers"]) >= 1
        finally:
            await stop_pipeline(pipeline)

    asyncio.run(scenario())
