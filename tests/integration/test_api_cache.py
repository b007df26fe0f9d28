"""storage.redis.cache against the real Redis: L1 → L2 → loader with hit/miss counts, invalidation across two
cache instances ("replicas" in one process sharing Redis), versioned L2 keys (no KEYS/SCAN anywhere), the
L1 TTL bound, the load/invalidate race, and the API serving a new trip after the pipeline's projection."""

from __future__ import annotations

import ast
import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import storage.redis.cache as cache_module
from storage.redis.cache import MultiLevelCache
from storage.redis.client import create_redis
from storage.redis.keys import INVALIDATE_CHANNEL, driver_keys, generation_key, l2_key, recent_key
from storage.redis.projections import invalidation_payload, publish_batch
from tests.integration.inprocess_api import (
    api_settings,
    bearer,
    drop_seeded,
    insert_trips,
    login,
    running_api,
    seeded_database,
)
from tests.integration.test_projections import _trip_batch


class Source:
    """A loader over a value the test changes, counting loads (the "database")."""

    def __init__(self, value: bytes) -> None:
        self.value = value
        self.loads = 0

    async def __call__(self) -> bytes:
        self.loads += 1
        return self.value


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def redis(base_settings, database_url) -> AsyncIterator:
    client = create_redis(api_settings(base_settings, database_url))
    yield client
    await client.aclose()


@pytest.fixture
async def driver(redis) -> AsyncIterator[str]:
    """A driver id of this test only (cache:invalidate is shared by everything on this Redis server)."""
    driver_id = f"cachetest-{uuid.uuid4().hex[:10]}"
    yield driver_id
    await redis.delete(*driver_keys(driver_id))


def _cache(redis, **kwargs) -> MultiLevelCache:
    return MultiLevelCache(redis, l1_ttl_s=kwargs.pop("l1_ttl_s", 30.0), l1_maxsize=100, **kwargs)


@pytest.fixture
async def replicas(redis) -> AsyncIterator[tuple[MultiLevelCache, MultiLevelCache]]:
    """Two caches, each with its invalidation listener running, as two API replicas would have."""
    pair = (_cache(redis), _cache(redis))
    tasks = [asyncio.create_task(c.listen()) for c in pair]
    await asyncio.wait_for(asyncio.gather(*(c.listening.wait() for c in pair)), 5)
    yield pair
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _eventually(predicate, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def test_a_read_goes_l1_then_l2_then_the_loader_and_counts_each_level(redis, driver):
    a, b = _cache(redis), _cache(redis)
    source = Source(b"v1")
    assert await a.get(driver, "profile", source, ttl_s=60) == b"v1"  # cold: L1 miss, L2 miss, load
    assert await a.get(driver, "profile", source, ttl_s=60) == b"v1"  # L1 hit
    assert await b.get(driver, "profile", source, ttl_s=60) == b"v1"  # other replica: L1 miss, L2 hit
    assert source.loads == 1
    assert {k: a.stats()[k] for k in ("l1_hits", "l1_misses", "l2_hits", "l2_misses", "loads")} == {
        "l1_hits": 1, "l1_misses": 1, "l2_hits": 0, "l2_misses": 1, "loads": 1}
    assert {k: b.stats()[k] for k in ("l1_hits", "l1_misses", "l2_hits", "l2_misses", "loads")} == {
        "l1_hits": 0, "l1_misses": 1, "l2_hits": 1, "l2_misses": 0, "loads": 0}


async def test_hits_and_misses_reach_the_metrics_hook(redis, driver):
    seen: list[tuple[str, bool]] = []
    cache = _cache(redis, on_lookup=lambda level, hit: seen.append((level, hit)))
    source = Source(b"v")
    await cache.get(driver, "x", source, ttl_s=60)
    await cache.get(driver, "x", source, ttl_s=60)
    assert seen == [("l1", False), ("l2", False), ("l1", True)]


async def test_a_not_found_answer_is_not_cached(redis, driver):
    cache, calls = _cache(redis), []

    async def missing() -> None:
        calls.append(1)

    assert await cache.get(driver, "profile", missing, ttl_s=60) is None
    assert await cache.get(driver, "profile", missing, ttl_s=60) is None
    assert len(calls) == 2


async def test_l2_keys_carry_the_drivers_generation_and_a_new_generation_is_a_miss(redis, driver):
    cache = _cache(redis)
    source = Source(b"old")
    await cache.get(driver, "trips:1:20", source, ttl_s=60)
    assert await redis.get(l2_key(driver, 0, "trips:1:20")) == b"old"
    assert 0 < await redis.ttl(l2_key(driver, 0, "trips:1:20")) <= 60

    source.value = b"new"
    await redis.incr(generation_key(driver))  # what a writer does after committing
    fresh = _cache(redis)  # a replica with an empty L1
    assert await fresh.get(driver, "trips:1:20", source, ttl_s=60) == b"new"
    assert await redis.get(l2_key(driver, 1, "trips:1:20")) == b"new"
    assert await redis.get(l2_key(driver, 0, "trips:1:20")) == b"old"  # dead: never read, expires by TTL
    await redis.delete(l2_key(driver, 0, "trips:1:20"), l2_key(driver, 1, "trips:1:20"))


def test_the_cache_never_enumerates_keys():
    """Code review as a test: no KEYS/SCAN call on a Redis client, none inside the Lua script."""
    source = Path(cache_module.__file__).read_text()
    calls = [node for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Call)
             and isinstance(node.func, ast.Attribute) and node.func.attr in {"keys", "scan", "scan_iter"}
             and "redis" in ast.unparse(node.func.value)]
    assert calls == []
    assert not re.search(r"redis\.call\(\s*'(KEYS|SCAN)'", cache_module._READ_SCRIPT, re.IGNORECASE)


async def test_an_invalidation_reaches_both_replicas_and_neither_serves_the_old_value(replicas, redis, driver):
    a, b = replicas
    source = Source(b"v1")
    for cache in (a, b):
        await cache.get(driver, "profile", source, ttl_s=60)
        await cache.get(driver, "profile", source, ttl_s=60)
    assert source.loads == 1 and a.stats()["l1_hits"] == b.stats()["l1_hits"] == 1

    source.value = b"v2"
    await a.invalidate([driver])  # the API's own write: INCR generation + PUBLISH cache:invalidate
    await _eventually(lambda: b.stats()["l1_invalidated"] >= 1)
    assert await a.get(driver, "profile", source, ttl_s=60) == b"v2"
    assert await b.get(driver, "profile", source, ttl_s=60) == b"v2"
    assert source.loads == 2  # one reload: the second replica found the new generation's entry in L2


async def test_the_pipelines_projection_of_an_ended_trip_invalidates_l1_and_l2(replicas, redis, driver):
    a, b = replicas
    source = Source(b"before the trip")
    for cache in (a, b):
        await cache.get(driver, "trips:1:20", source, ttl_s=60)
    generation = int(await redis.get(generation_key(driver)) or 0)

    source.value = b"with the new trip"
    output, _ = _trip_batch(driver, 100, 400)
    await publish_batch(redis, [output])  # the Lua script INCRs cache:gen:{id}; then one cache:invalidate
    assert int(await redis.get(generation_key(driver))) == generation + 1
    await _eventually(lambda: a.stats()["l1_invalidated"] >= 1 and b.stats()["l1_invalidated"] >= 1)
    assert await a.get(driver, "trips:1:20", source, ttl_s=60) == b"with the new trip"
    assert await b.get(driver, "trips:1:20", source, ttl_s=60) == b"with the new trip"


async def test_an_unreadable_or_foreign_message_changes_nothing(replicas, redis, driver):
    a, _ = replicas
    source = Source(b"v")
    await a.get(driver, "profile", source, ttl_s=60)
    await redis.publish(INVALIDATE_CHANNEL, b"not json")
    await redis.publish(INVALIDATE_CHANNEL, invalidation_payload([f"{driver}-other"]))
    await redis.publish(INVALIDATE_CHANNEL, invalidation_payload([driver]))  # a marker we can wait for
    await _eventually(lambda: a.stats()["l1_invalidated"] >= 1)
    assert a.stats()["l1_invalidated"] == 1


async def test_a_lost_invalidation_is_bounded_by_the_l1_ttl(redis, driver):
    clock = FakeClock()
    cache = _cache(redis, l1_ttl_s=30.0, timer=clock)
    source = Source(b"v1")
    await cache.get(driver, "profile", source, ttl_s=60)
    source.value = b"v2"
    await redis.incr(generation_key(driver))  # changed, but the message never arrives
    clock.now += 29.0
    assert await cache.get(driver, "profile", source, ttl_s=60) == b"v1"  # within the bound: stale allowed
    clock.now += 2.0
    assert await cache.get(driver, "profile", source, ttl_s=60) == b"v2"  # past l1_ttl_s: fresh


async def test_a_load_that_raced_an_invalidation_is_not_kept_in_l1(redis, driver):
    cache = _cache(redis)
    release = asyncio.Event()

    async def slow_old_value() -> bytes:
        await release.wait()
        return b"read before the change"

    pending = asyncio.create_task(cache.get(driver, "profile", slow_old_value, ttl_s=60))
    await asyncio.sleep(0.05)
    await cache.invalidate([driver])  # the change commits while the load is in flight
    release.set()
    assert await pending == b"read before the change"  # this caller may see it…
    source = Source(b"after the change")
    assert await cache.get(driver, "profile", source, ttl_s=60) == b"after the change"  # …nobody after
    assert source.loads == 1


# -- through the API --------------------------------------------------------------------------------


async def test_the_api_serves_a_new_trip_after_the_pipeline_invalidates(base_settings):
    settings = await seeded_database(base_settings, drivers=1)
    driver = "driver0001"
    try:
        async with running_api(settings) as (app, client):
            cache = app.state.resources.cache
            await asyncio.wait_for(cache.listening.wait(), 5)
            headers = bearer(await login(client, driver))
            first = (await client.get("/api/v1/drivers/me/trips", headers=headers)).json()
            again = (await client.get("/api/v1/drivers/me/trips", headers=headers)).json()
            assert first == again and first["total"] == 0 and cache.stats()["l1_hits"] >= 1

            (trip_id,) = await insert_trips(settings, driver, 1)  # the persistence transaction commits a trip …
            output, _ = _trip_batch(driver, 10, 20)
            redis = create_redis(settings)
            try:
                await publish_batch(redis, [output])  # … then projects it: generation + cache:invalidate
                await _eventually(lambda: cache.stats()["l1_invalidated"] >= 1)
                after = (await client.get("/api/v1/drivers/me/trips", headers=headers)).json()
                await redis.delete(recent_key(driver))  # not the generation: later databases' driver0001 shares it
            finally:
                await redis.aclose()
            assert after["total"] == 1 and after["items"][0]["trip_id"] == str(trip_id)
    finally:
        await drop_seeded(settings)


async def test_a_starting_replica_warms_recently_active_drivers_within_its_budget(base_settings):
    settings = await seeded_database(base_settings, drivers=2)
    try:
        await insert_trips(settings, "driver0001", 2)  # driver0002 drove nothing: not warmed
        async with running_api(settings.with_overrides(cache_warm_budget_s=5.0)) as (app, client):
            resources = app.state.resources
            assert await asyncio.wait_for(resources.cache_warming, 6) == 1
            before = resources.cache.stats()
            headers = bearer(await login(client, "driver0001"))
            for path in ("/api/v1/drivers/me", "/api/v1/drivers/me/trips?page=1&page_size=20",
                         "/api/v1/risk/me/score"):
                assert (await client.get(path, headers=headers)).status_code == 200
            after = resources.cache.stats()
            assert after["l1_hits"] - before["l1_hits"] == 3 and after["l1_misses"] == before["l1_misses"]
    finally:
        await drop_seeded(settings)
