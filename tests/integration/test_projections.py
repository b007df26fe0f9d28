"""The projector contract (tests/contracts/projector_contract.py) on Redis (RedisProjector), plus what only
Redis has: one pipeline round trip per batch, a forgotten script, TTLs, the speed for 2,000 drivers, the keys a
batch writes, and the Lua twins of storage/redis/keys.py's builders."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

import storage.redis.projections as projections
from domain.batches import ShardOutput
from domain.events import TripStarted
from storage.redis.client import create_redis
from storage.redis.keys import LUA_KEYS, driver_channel, driver_keys, generation_key, l2_key, recent_key
from storage.redis.projections import RedisProjector, publish_batch, read_recent
from tests.contracts.projection_builders import T0, live, new_event, newest_position_seq, trip_batch
from tests.contracts.projector_contract import *  # noqa: F403 - the contract's tests


@pytest.fixture
async def redis(base_settings) -> AsyncIterator:
    client = create_redis(base_settings)
    yield client
    await client.aclose()


@pytest.fixture
async def drivers(redis) -> AsyncIterator:
    """Unique driver ids per test; every key they may own is deleted afterwards (by name, no KEYS)."""
    made: list[str] = []

    def make(n: int = 1) -> list[str]:
        ids = [f"projtest-{uuid.uuid4().hex[:10]}" for _ in range(n)]
        made.extend(ids)
        return ids

    yield make
    keys = [key for d in made for key in driver_keys(d)]
    for i in range(0, len(keys), 1000):
        await redis.delete(*keys[i : i + 1000])


class RedisProjectorBackend:
    def __init__(self, redis, drivers) -> None:
        self.redis = redis
        self.drivers = drivers

    def projector(self, recent_per_driver: int = 200) -> RedisProjector:
        return RedisProjector(self.redis, recent_per_driver=recent_per_driver)

    async def recent(self, driver_id: str, since_seq: int = -1) -> list[bytes]:
        return await read_recent(self.redis, driver_id, since_seq)

    async def generation(self, driver_id: str) -> int:
        return int(await self.redis.get(generation_key(driver_id)) or 0)

    async def capture(self, channels: list[str], action: Callable[[], Awaitable]) -> dict[str, list[bytes]]:
        pubsub = self.redis.pubsub()
        await pubsub.subscribe(*channels)
        got: dict[str, list[bytes]] = {c: [] for c in channels}
        try:
            while await pubsub.get_message(timeout=0.05) is not None:  # the subscribe confirmations
                pass
            await action()
            deadline = time.monotonic() + 1.0  # Redis delivers in order; a quiet second means all arrived
            while time.monotonic() < deadline:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
                if message is not None:
                    got[message["channel"].decode()].append(message["data"])
                    deadline = time.monotonic() + 0.3
        finally:
            await pubsub.aclose()
        return got


@pytest.fixture
def backend(redis, drivers) -> RedisProjectorBackend:
    return RedisProjectorBackend(redis, drivers)


_trip_batch = trip_batch  # tests/integration/test_api_cache.py imports it from here

# -- Redis only -------------------------------------------------------------------------------------


async def test_recent_messages_expire(redis, drivers):
    (d1,) = drivers()
    await publish_batch(redis, [ShardOutput(shard=0, live=[live(d1, 1)])], recent_ttl_s=60)
    assert 0 < await redis.ttl(recent_key(d1)) <= 60


async def test_a_batch_is_one_pipeline_round_trip(redis, drivers, monkeypatch):
    ids = drivers(1200)  # more than one script call's worth of drivers
    await publish_batch(redis, [ShardOutput(shard=0, live=[live(d, 1) for d in ids])])  # script loaded
    executed: list[int] = []
    real_pipeline = redis.pipeline

    def counting_pipeline(*args, **kwargs):
        pipe = real_pipeline(*args, **kwargs)
        real_execute = pipe.execute

        async def execute(*a, **k):
            executed.append(len(pipe.command_stack))
            return await real_execute(*a, **k)

        pipe.execute = execute
        return pipe

    monkeypatch.setattr(redis, "pipeline", counting_pipeline)
    result = await publish_batch(redis, [ShardOutput(shard=0, live=[live(d, 2) for d in ids])])
    assert (result.drivers, result.messages, result.trips_ended) == (1200, 1200, 0)
    assert len(executed) == 1  # one round trip: 3 script calls + 3 fleet chunks, and no invalidation
    assert executed[0] == 3 + 3  # message (positions alone change nothing the API caches)


async def test_a_forgotten_script_is_loaded_and_the_batch_still_lands(redis, drivers, monkeypatch):
    # A script Redis has never seen behaves like one lost in a restart (NOSCRIPT), without flushing the
    # shared server's scripts.
    (d1,) = drivers()
    fresh = projections._BATCH_SCRIPT + f"\n-- {uuid.uuid4()}\n"
    monkeypatch.setattr(projections, "_BATCH_SCRIPT", fresh)
    monkeypatch.setattr(projections, "_BATCH_SCRIPT_SHA", hashlib.sha1(fresh.encode()).hexdigest())
    result = await publish_batch(redis, [ShardOutput(shard=0, live=[live(d1, 3)])])
    assert result.drivers == 1
    assert newest_position_seq(await read_recent(redis, d1)) == 3


async def test_publish_batch_for_2000_drivers_is_fast(redis, drivers, capsys):
    ids = drivers(2000)

    def batch(base_seq: int) -> list[ShardOutput]:
        outputs = []
        for shard in range(4):
            positions = [live(d, base_seq + i) for i, d in enumerate(ids) if i % 4 == shard]
            events = [
                new_event(TripStarted(event_id=uuid.uuid4(), driver_id=d, trip_id=uuid.uuid4(), occurred_at_ms=T0,
                                   start_reason="motion", lat=52.5, lon=13.4), base_seq + i - 1, base_seq + i)
                for i, d in enumerate(ids) if i % 4 == shard and i % 10 == 0
            ]
            outputs.append(ShardOutput(shard=shard, events=events, live=positions))
        return outputs

    await publish_batch(redis, batch(10_000))
    timings = []
    for round_no in range(3):
        outputs = batch(20_000 + round_no * 10_000)
        started = time.perf_counter()
        result = await publish_batch(redis, outputs)
        timings.append((time.perf_counter() - started) * 1000)
        assert (result.drivers, result.messages, result.trips_ended) == (2000, 2200, 0)
    with capsys.disabled():
        print(f"\npublish_batch 2,000 drivers × (1 position + 0.1 events): {', '.join(f'{t:.1f}' for t in timings)} ms")
    assert min(timings) < 500  # a regression guard, not the target (docs/PROJECTIONS.md has the figures)


async def test_a_trip_batch_writes_only_the_keys_of_driver_keys(redis, drivers):
    """SCAN in a test only (production never enumerates): every key that names the driver after a batch with
    a trip end is one of `driver_keys` — no live hash, no latest trip."""
    (d1,) = drivers()
    output, _ = trip_batch(d1, 10, 90)
    await publish_batch(redis, [output])
    found = {key.decode() async for key in redis.scan_iter(match=f"*{d1}*", count=10_000)}
    assert found == set(driver_keys(d1))


async def test_the_lua_key_functions_spell_the_python_names(redis):
    script = LUA_KEYS + (
        "return {recent_key(ARGV[1]), driver_channel(ARGV[1]), generation_key(ARGV[1]),"
        " l2_key(ARGV[1], ARGV[2], ARGV[3])}"
    )
    names = await redis.eval(script, 0, "d1", "7", "trips:1:20")
    assert [n.decode() for n in names] == [recent_key("d1"), driver_channel("d1"), generation_key("d1"),
                                           l2_key("d1", 7, "trips:1:20")]
