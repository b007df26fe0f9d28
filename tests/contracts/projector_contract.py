"""The projector contract: what RedisProjector and the InMemoryProjector fake both do (STYLE.md habit 6).

Written once against a `backend` fixture: `backend.projector(recent_per_driver=...)` makes a projector,
`live`/`latest_trip`/`recent` read what readers see, `capture(channels, action)` returns the messages
published on those channels while `action` ran, `drivers(n)` gives fresh driver ids. Run on the fake in the
unit suite (tests/unit/test_projector_contract.py), on Redis in the integration suite
(tests/integration/test_projections.py). Redis's channels are shared with other users: tests look only
at messages about their own drivers.
"""

from __future__ import annotations

import msgspec

from domain.batches import ShardOutput
from storage.redis.projections import FLEET_CHANNEL, INVALIDATE_CHANNEL, driver_channel
from tests.contracts.projection_builders import T0, live, trip_batch


def _ours(channel: str, payloads: list[bytes], drivers: set[str]) -> list[dict]:
    bodies = [msgspec.json.decode(p) for p in payloads]
    if channel == FLEET_CHANNEL:
        return [b for b in bodies if b["messages"][0]["driver_id"] in drivers]
    if channel == INVALIDATE_CHANNEL:
        return [b for b in bodies if drivers & set(b["driver_ids"])]
    return bodies


async def test_a_batch_leaves_live_state_latest_trip_and_recent_messages(backend):
    d1, d2 = backend.drivers(2)
    output, trip = trip_batch(d1, 100, 400)
    result = await backend.projector().publish_batch([output, ShardOutput(shard=1, live=[live(d2, 7, trip)])])

    assert (result.drivers, result.messages, result.live_updated, result.latest_trips_updated) == (2, 5, 2, 1)
    position = await backend.live(d1)
    assert position is not None and (position.seq, position.ts_ms, position.trip_id) == (400, T0 + 400_000, None)
    assert (position.lat, position.speed_kmh, position.heading) == (52.5 + 400 / 1e6, 40.0 + 400 % 7, 90.0)
    assert (await backend.live(d2)).trip_id == trip
    assert await backend.latest_trip(d1) == output.trips[0]
    assert await backend.latest_trip(d2) is None
    recent = [msgspec.json.decode(m) for m in await backend.recent(d1)]
    assert [(m["seq"], m["type"]) for m in recent] == [
        (100, "trip_started"), (395, "harsh_braking_detected"), (400, "position"), (400, "trip_ended")]  # fmt: skip
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


async def test_replaying_the_same_or_an_older_batch_never_moves_a_driver_back(backend):
    (d1,) = backend.drivers()
    projector = backend.projector()
    old_batch, _ = trip_batch(d1, 100, 200)
    new_batch, new_trip = trip_batch(d1, 300, 500)
    await projector.publish_batch([old_batch])
    await projector.publish_batch([new_batch])
    recent_before = await backend.recent(d1)

    again = await projector.publish_batch([new_batch])
    older = await projector.publish_batch([old_batch])

    assert (again.live_updated, again.live_stale, again.latest_trips_updated) == (0, 1, 0)
    assert (older.live_updated, older.live_stale, older.latest_trips_updated) == (0, 1, 0)
    assert (await backend.live(d1)).seq == 500
    assert (await backend.latest_trip(d1)).trip_id == new_trip
    assert await backend.recent(d1) == recent_before  # the same members again: nothing added


async def test_a_batch_with_nothing_to_project_changes_nothing(backend):
    (d1,) = backend.drivers()
    got = await backend.capture([driver_channel(d1)], lambda: backend.projector().publish_batch([ShardOutput(shard=0)]))
    assert got[driver_channel(d1)] == []
    assert await backend.live(d1) is None and await backend.recent(d1) == []
