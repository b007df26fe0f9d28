"""storage.redis.projections against the real Redis: what a committed batch leaves in Redis, what subscribers
receive, and that replays (the same batch again, an older batch) never move a driver backwards."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import AsyncIterator

import msgspec
import pytest

import storage.redis.projections as projections
from domain.batches import LivePosition, NewEvent, ShardOutput
from domain.events import HarshBrakingDetected, TripEnded, TripStarted, encode_event
from domain.trip_summary import TripSummary
from storage.redis.client import create_redis
from storage.redis.projections import (
    FLEET_CHANNEL,
    INVALIDATE_CHANNEL,
    driver_channel,
    driver_keys,
    latest_trip_key,
    live_key,
    publish_batch,
    read_latest_trip,
    read_live,
    read_recent,
    recent_key,
)

T0 = 1_767_225_600_000


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


def _live(driver_id: str, seq: int, trip_id: uuid.UUID | None = None) -> LivePosition:
    return LivePosition(driver_id, seq, T0 + seq * 1000, 52.5 + seq / 1e6, 13.4, 40.0 + seq % 7, 90.0, trip_id)


def _event(event, seq: int, version: int) -> NewEvent:
    return NewEvent(event.event_id, event.driver_id, version, event.__struct_config__.tag, event.occurred_at_ms,
                    encode_event(event), seq)


def _trip_batch(driver_id: str, first_seq: int, last_seq: int) -> tuple[ShardOutput, uuid.UUID]:
    """A whole trip in one batch: started at `first_seq`, a harsh brake, ended at `last_seq`."""
    trip = uuid.uuid4()
    start_ms, end_ms = T0 + first_seq * 1000, T0 + last_seq * 1000
    started = TripStarted(event_id=uuid.uuid4(), driver_id=driver_id, trip_id=trip, occurred_at_ms=start_ms,
                          start_reason="ignition_on", lat=52.5, lon=13.4)
    harsh = HarshBrakingDetected(event_id=uuid.uuid4(), driver_id=driver_id, trip_id=trip, occurred_at_ms=end_ms - 5000,
                                 peak_mps2=4.5, duration_s=2.0, speed_at_start_kmh=60.0, start_ms=end_ms - 7000,
                                 end_ms=end_ms - 5000, lat=52.5, lon=13.4)
    summary = TripSummary(trip_id=trip, driver_id=driver_id, start_ms=start_ms, end_ms=end_ms, distance_m=3000.0,
                          duration_s=(end_ms - start_ms) / 1000, avg_speed_kmh=30.0, max_speed_kmh=60.0,
                          harsh_braking_count=1)
    ended = TripEnded(event_id=uuid.uuid4(), driver_id=driver_id, trip_id=trip, occurred_at_ms=end_ms, summary=summary)
    events = [_event(started, first_seq, 1), _event(harsh, last_seq - 5, 2), _event(ended, last_seq, 3)]
    return ShardOutput(shard=0, events=events, trips=[summary], live=[_live(driver_id, last_seq)]), trip


async def test_a_batch_leaves_live_state_latest_trip_and_recent_messages(redis, drivers):
    d1, d2 = drivers(2)
    output, trip = _trip_batch(d1, 100, 400)
    result = await publish_batch(redis, [output, ShardOutput(shard=1, live=[_live(d2, 7, trip)])])

    assert (result.drivers, result.messages, result.live_updated, result.latest_trips_updated) == (2, 5, 2, 1)
    live = await read_live(redis, d1)
    assert live is not None and (live.seq, live.ts_ms, live.trip_id) == (400, T0 + 400_000, None)
    assert (live.lat, live.speed_kmh, live.heading) == (52.5 + 400 / 1e6, 40.0 + 400 % 7, 90.0)
    assert (await read_live(redis, d2)).trip_id == trip
    latest = await read_latest_trip(redis, d1)
    assert latest == output.trips[0]
    assert await read_latest_trip(redis, d2) is None
    recent = [msgspec.json.decode(m) for m in await read_recent(redis, d1)]
    assert [(m["seq"], m["type"]) for m in recent] == [
        (100, "trip_started"), (395, "harsh_braking_detected"), (400, "position"), (400, "trip_ended")]
    assert [m["seq"] for m in map(msgspec.json.decode, await read_recent(redis, d1, since_seq=395))] == [400, 400]
    assert await redis.ttl(recent_key(d1)) > 86_000


async def test_recent_messages_are_trimmed_to_the_newest_and_expire(redis, drivers):
    (d1,) = drivers()
    for seq in range(10, 80, 10):
        await publish_batch(redis, [ShardOutput(shard=0, live=[_live(d1, seq)])], recent_per_driver=3,
                            recent_ttl_s=60)
    assert await redis.zcard(recent_key(d1)) == 3
    assert [msgspec.json.decode(m)["seq"] for m in await read_recent(redis, d1)] == [50, 60, 70]
    assert 0 < await redis.ttl(recent_key(d1)) <= 60


async def test_subscribers_receive_driver_fleet_and_invalidation_messages(redis, drivers):
    d1, d2 = drivers(2)
    output, _ = _trip_batch(d1, 10, 90)
    pubsub = redis.pubsub()
    await pubsub.subscribe(driver_channel(d1), FLEET_CHANNEL, INVALIDATE_CHANNEL)
    try:
        await publish_batch(redis, [output, ShardOutput(shard=1, live=[_live(d2, 5)])])
        got: dict[bytes, list[dict]] = {}
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not (
            len(got.get(driver_channel(d1).encode(), [])) == 4
            and got.get(FLEET_CHANNEL.encode()) and got.get(INVALIDATE_CHANNEL.encode())
        ):
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
            if message is None:
                continue
            body = msgspec.json.decode(message["data"])
            # ws:fleet and cache:invalidate are shared: keep only what mentions our drivers
            if message["channel"] == FLEET_CHANNEL.encode() and body["messages"][0]["driver_id"] not in (d1, d2):
                continue
            if message["channel"] == INVALIDATE_CHANNEL.encode() and d1 not in body["driver_ids"]:
                continue
            got.setdefault(message["channel"], []).append(body)
    finally:
        await pubsub.aclose()

    assert [(m["seq"], m["type"]) for m in got[driver_channel(d1).encode()]] == [
        (10, "trip_started"), (85, "harsh_braking_detected"), (90, "position"), (90, "trip_ended")]
    (fleet,) = got[FLEET_CHANNEL.encode()]
    assert (fleet["type"], fleet["chunks"]) == ("fleet_batch", 1)
    per_driver = {d1: [(d1, 10), (d1, 85), (d1, 90), (d1, 90)], d2: [(d2, 5)]}
    assert [(m["driver_id"], m["seq"]) for m in fleet["messages"]] == [
        pair for d in sorted(per_driver) for pair in per_driver[d]]
    (invalidation,) = got[INVALIDATE_CHANNEL.encode()]
    assert invalidation == {"type": "drivers_changed", "driver_ids": [d1]}  # d2 only moved: nothing cached changed


async def test_replaying_the_same_or_an_older_batch_never_moves_a_driver_back(redis, drivers):
    (d1,) = drivers()
    old_batch, _ = _trip_batch(d1, 100, 200)
    new_batch, new_trip = _trip_batch(d1, 300, 500)
    await publish_batch(redis, [old_batch])
    await publish_batch(redis, [new_batch])
    zset_before = await redis.zrange(recent_key(d1), 0, -1, withscores=True)

    again = await publish_batch(redis, [new_batch])
    older = await publish_batch(redis, [old_batch])

    assert (again.live_updated, again.live_stale, again.latest_trips_updated) == (0, 1, 0)
    assert (older.live_updated, older.live_stale, older.latest_trips_updated) == (0, 1, 0)
    assert (await read_live(redis, d1)).seq == 500
    assert (await read_latest_trip(redis, d1)).trip_id == new_trip
    assert await redis.zrange(recent_key(d1), 0, -1, withscores=True) == zset_before  # ZADD of same members: no-op


async def test_a_batch_is_one_pipeline_round_trip(redis, drivers, monkeypatch):
    ids = drivers(1200)  # more than one script call's worth of drivers
    await publish_batch(redis, [ShardOutput(shard=0, live=[_live(d, 1) for d in ids])])  # script loaded
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
    result = await publish_batch(redis, [ShardOutput(shard=0, live=[_live(d, 2) for d in ids])])
    assert result.live_updated == 1200
    assert len(executed) == 1  # one round trip: 3 script calls + 3 fleet chunks, and no invalidation
    assert executed[0] == 3 + 3  # message (positions alone change nothing the API caches)


async def test_a_forgotten_script_is_loaded_and_the_batch_still_lands(redis, drivers, monkeypatch):
    # A script Redis has never seen behaves like one lost in a restart (NOSCRIPT), without flushing the
    # shared server's scripts.
    (d1,) = drivers()
    fresh = projections._BATCH_SCRIPT + f"\n-- {uuid.uuid4()}\n"
    monkeypatch.setattr(projections, "_BATCH_SCRIPT", fresh)
    monkeypatch.setattr(projections, "_BATCH_SCRIPT_SHA", hashlib.sha1(fresh.encode()).hexdigest())
    result = await publish_batch(redis, [ShardOutput(shard=0, live=[_live(d1, 3)])])
    assert result.live_updated == 1
    assert (await read_live(redis, d1)).seq == 3


async def test_publish_batch_for_2000_drivers_is_fast(redis, drivers, capsys):
    ids = drivers(2000)

    def batch(base_seq: int) -> list[ShardOutput]:
        outputs = []
        for shard in range(4):
            live = [_live(d, base_seq + i) for i, d in enumerate(ids) if i % 4 == shard]
            events = [
                _event(TripStarted(event_id=uuid.uuid4(), driver_id=d, trip_id=uuid.uuid4(), occurred_at_ms=T0,
                                   start_reason="motion", lat=52.5, lon=13.4), base_seq + i - 1, base_seq + i)
                for i, d in enumerate(ids) if i % 4 == shard and i % 10 == 0
            ]
            outputs.append(ShardOutput(shard=shard, events=events, live=live))
        return outputs

    await publish_batch(redis, batch(10_000))
    timings = []
    for round_no in range(3):
        outputs = batch(20_000 + round_no * 10_000)
        started = time.perf_counter()
        result = await publish_batch(redis, outputs)
        timings.append((time.perf_counter() - started) * 1000)
        assert (result.drivers, result.messages, result.live_updated) == (2000, 2200, 2000)
    with capsys.disabled():
        print(f"\npublish_batch 2,000 drivers × (1 position + 0.1 events): {', '.join(f'{t:.1f}' for t in timings)} ms")
    assert min(timings) < 500  # a regression guard, not the target (docs/PROJECTIONS.md has the figures)


def test_key_names_match_the_documented_scheme():
    assert (live_key("d1"), latest_trip_key("d1"), recent_key("d1"), driver_channel("d1")) == (
        "driver:d1:live", "driver:d1:latest_trip", "ws:recent:d1", "ws:driver:d1")
