"""The projector contract: what RedisProjector and the InMemoryProjector fake both do (STYLE.md habit 6).

Written once against a `backend` fixture: `backend.projector(recent_per_driver=...)` makes a projector,
`recent`/`generation` read what readers see (the resumable messages, the API's cache generation),
`capture(channels, action)` returns the messages published on those channels while `action` ran, `drivers(n)`
gives fresh driver ids. Run on the fake in the unit suite (tests/unit/test_projector_contract.py), on Redis in
the integration suite (tests/integration/test_projections.py). Redis's channels are shared with other users:
tests look only at messages about their own drivers.
"""

from __future__ import annotations

import msgspec

from domain.batches import ShardOutput
from storage.redis.keys import FLEET_CHANNEL, INVALIDATE_CHANNEL, driver_channel
from tests.contracts.projection_builders import T0, live, newest_position_seq, trip_batch


def _ours(channel: str, payloads: list[bytes], drivers: set[str]) -> list[dict]:
    bodies = [msgspec.json.decode(p) for p in payloads]
    if channel == FLEET_CHANNEL:
        return [b for b in bodies if b["messages"][0]["driver_id"] in drivers]
    if channel == INVALIDATE_CHANNEL:
        return [b for b in bodies if drivers & set(b["driver_ids"])]
    return bodies


async def test_a_batch_leaves_each_drivers_messages_in_order_in_recent(backend):
    d1, d2 = backend.drivers(2)
    output, trip = trip_batch(d1, 100, 400)
    result = await backend.projector().publish_batch([output, ShardOutput(shard=1, live=[live(d2, 7, trip)])])

    assert (result.drivers, result.messages, result.trips_ended, result.fleet_publishes) == (2, 5, 1, 1)
    recent = [msgspec.json.decode(m) for m in await backend.recent(d1)]
    assert [(m["seq"], m["type"]) for m in recent] == [
        (100, "trip_started"), (395, "harsh_braking_detected"), (400, "position"), (400, "trip_ended")]  # fmt: skip
    position, ended = recent[2], recent[3]
    assert (position["driver_id"], position["ts_ms"], position["trip_id"]) == (d1, T0 + 400_000, None)
    assert (position["lat"], position["speed_kmh"], position["heading"]) == (52.5 + 400 / 1e6, 40.0 + 400 % 7, 90.0)
    assert ended["payload"]["summary"] == msgspec.json.decode(msgspec.json.encode(output.trips[0]))
    (other,) = [msgspec.json.decode(m) for m in await backend.recent(d2)]
    assert (other["type"], other["seq"], other["trip_id"]) == ("position", 7, str(trip))
    assert [msgspec.json.decode(m)["seq"] for m in await backend.recent(d1, since_seq=395)] == [400, 400]


async def test_recent_messages_are_trimmed_to_the_newest(backend):
    (d1,) = backend.drivers()
    projector = backend.projector(recent_per_driver=3)
    for seq in range(10, 80, 10):
        await projector.publish_batch([ShardOutput(shard=0, live=[live(d1, seq)])])
    assert [msgspec.json.decode(m)["seq"] for m in await backend.recent(d1)] == [50, 60, 70]


async def test_subscribers_receive_driver_fleet_and_invalidation_messages(backend):
    d1, d2 = backend.drivers(2)
    output, _ = trip_batch(d1, 10, 90)
    projector = backend.projector()
    channels = [driver_channel(d1), FLEET_CHANNEL, INVALIDATE_CHANNEL]
    got = await backend.capture(
        channels, lambda: projector.publish_batch([output, ShardOutput(shard=1, live=[live(d2, 5)])])
    )

    assert [(m["seq"], m["type"]) for m in _ours(driver_channel(d1), got[driver_channel(d1)], {d1})] == [
        (10, "trip_started"), (85, "harsh_braking_detected"), (90, "position"), (90, "trip_ended")]  # fmt: skip
    (fleet,) = _ours(FLEET_CHANNEL, got[FLEET_CHANNEL], {d1, d2})
    assert (fleet["type"], fleet["chunks"]) == ("fleet_batch", 1)
    per_driver = {d1: [(d1, 10), (d1, 85), (d1, 90), (d1, 90)], d2: [(d2, 5)]}
    assert [(m["driver_id"], m["seq"]) for m in fleet["messages"]] == [
        pair for d in sorted(per_driver) for pair in per_driver[d]]  # fmt: skip
    (invalidation,) = _ours(INVALIDATE_CHANNEL, got[INVALIDATE_CHANNEL], {d1, d2})
    assert invalidation == {"type": "drivers_changed", "driver_ids": [d1]}  # d2 only moved: nothing cached changed


async def test_only_a_trip_end_bumps_the_cache_generation_and_invalidates(backend):
    d1, d2 = backend.drivers(2)
    projector = backend.projector()
    moved = await backend.capture(
        [INVALIDATE_CHANNEL], lambda: projector.publish_batch([ShardOutput(shard=0, live=[live(d1, 5), live(d2, 5)])])
    )
    assert _ours(INVALIDATE_CHANNEL, moved[INVALIDATE_CHANNEL], {d1, d2}) == []
    assert (await backend.generation(d1), await backend.generation(d2)) == (0, 0)

    output, _ = trip_batch(d1, 10, 90)
    ended = await backend.capture(
        [INVALIDATE_CHANNEL], lambda: projector.publish_batch([output, ShardOutput(shard=1, live=[live(d2, 95)])])
    )
    assert _ours(INVALIDATE_CHANNEL, ended[INVALIDATE_CHANNEL], {d1, d2}) == [
        {"type": "drivers_changed", "driver_ids": [d1]}]  # fmt: skip
    assert (await backend.generation(d1), await backend.generation(d2)) == (1, 0)


async def test_replaying_a_batch_publishes_the_same_bytes_and_leaves_recent_as_it_was(backend):
    (d1,) = backend.drivers()
    projector = backend.projector()
    old_batch, _ = trip_batch(d1, 100, 200)
    new_batch, _ = trip_batch(d1, 300, 500)
    await projector.publish_batch([old_batch])
    first = await backend.capture([driver_channel(d1)], lambda: projector.publish_batch([new_batch]))
    recent_before = await backend.recent(d1)

    again = await backend.capture([driver_channel(d1)], lambda: projector.publish_batch([new_batch]))
    await projector.publish_batch([old_batch])

    assert again == first and len(first[driver_channel(d1)]) == 4  # identical bytes: viewers drop them by seq
    assert await backend.recent(d1) == recent_before  # the same members again: nothing added
    assert newest_position_seq(recent_before) == 500
    # Every projected trip end bumps the generation, replays too: a spurious L2 miss, never a stale read.
    assert await backend.generation(d1) == 4


async def test_a_replayed_older_batch_never_displaces_newer_messages(backend):
    (d1,) = backend.drivers()
    projector = backend.projector(recent_per_driver=3)
    for seq in range(10, 80, 10):
        await projector.publish_batch([ShardOutput(shard=0, live=[live(d1, seq)])])
    await projector.publish_batch([ShardOutput(shard=0, live=[live(d1, 20)])])  # a consumer rewind
    recent = await backend.recent(d1)
    assert [msgspec.json.decode(m)["seq"] for m in recent] == [50, 60, 70]
    assert newest_position_seq(recent) == 70


async def test_a_batch_with_nothing_to_project_changes_nothing(backend):
    (d1,) = backend.drivers()
    projector = backend.projector()
    results = []

    async def project() -> None:
        results.append(await projector.publish_batch([ShardOutput(shard=0)]))

    got = await backend.capture([driver_channel(d1), INVALIDATE_CHANNEL], project)
    assert [(r.drivers, r.messages, r.trips_ended, r.fleet_publishes) for r in results] == [(0, 0, 0, 0)]
    assert got[driver_channel(d1)] == [] and _ours(INVALIDATE_CHANNEL, got[INVALIDATE_CHANNEL], {d1}) == []
    assert await backend.recent(d1) == [] and await backend.generation(d1) == 0
