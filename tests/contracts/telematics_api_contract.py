"""The TelematicsApi contract (usecases.ports.telematics_api): run on InMemoryTelematicsApi in the unit suite and on
HttpTelematicsApi against the real app in the integration suite. The `api` posts as the world's driver; trips are
arranged through the world."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Protocol

from usecases.ports.telematics_api import TelematicsApi

HOUR_MS = 3_600_000


class World(Protocol):
    api: TelematicsApi
    driver_id: str  # the login's driver
    other_driver_id: str
    now_ms: int  # readings a few minutes older are accepted
    max_readings: int  # the API's ingest_max_readings

    async def given_trip(self, start_ms: int, end_ms: int, episodes: int) -> uuid.UUID:
        """A stored trip of `driver_id` with `episodes` episodes of the types `story_types` names, spread evenly
        over it, the first graded "high"."""
        ...


def story_types(episodes: int) -> list[str]:
    """The episodes of an arranged trip: harsh brakings, every third one speeding."""
    return ["speeding" if i % 3 == 2 else "harsh_braking" for i in range(episodes)]


def reading(driver_id: str, ts_ms: int, **changes: object) -> bytes:
    wire = {"event_id": str(uuid.uuid4()), "driver_id": driver_id, "ts": ts_ms, "type": "position", "lat": 45.5,
            "lon": 7.2, "speed_kmh": 42.0, "accel_ms2": 0.3, "heading": 180.0, **changes}
    return json.dumps({k: v for k, v in wire.items() if v is not None}).encode()


async def refused_readings_come_back_by_index_and_reason_and_the_rest_is_accepted(world: World) -> None:
    t = world.now_ms - 60_000
    batch = [reading(world.driver_id, t), reading(world.driver_id, t + 1, ts=None),
             reading(world.driver_id, t + 2, lat=95.0), reading(world.driver_id, t + 3)]
    answer = await world.api.post_readings(batch)
    assert answer.accepted == 2 and answer.batch_refusal is None
    assert [(r.index, r.reason) for r in answer.refused] == [(1, "missing_field"), (2, "lat_out_of_range")]
    assert all(r.message for r in answer.refused)


async def another_drivers_reading_refuses_the_whole_batch(world: World) -> None:
    t = world.now_ms - 60_000
    answer = await world.api.post_readings([reading(world.driver_id, t), reading(world.other_driver_id, t)])
    assert (answer.accepted, answer.refused, answer.batch_refusal) == (0, (), "forbidden")


async def a_batch_over_the_maximum_is_refused_whole(world: World) -> None:
    t = world.now_ms - 60_000
    answer = await world.api.post_readings([reading(world.driver_id, t + i) for i in range(world.max_readings + 1)])
    assert (answer.accepted, answer.batch_refusal) == (0, "batch_too_large")


async def trips_ending_since_come_newest_first_without_older_ones(world: World) -> None:
    base = world.now_ms - 240 * HOUR_MS
    mine = [await world.given_trip(base + i * HOUR_MS, base + i * HOUR_MS + 1_800_000, 0) for i in range(3)]
    found = await world.api.trips_ending_since(world.driver_id, base + HOUR_MS + 1_800_000)
    assert [t.trip_id for t in found if t.trip_id in mine] == [mine[2], mine[1]]
    trip = next(t for t in found if t.trip_id == mine[2])
    assert (trip.driver_id, trip.start_ms, trip.end_ms) == (world.driver_id, base + 2 * HOUR_MS,
                                                            base + 2 * HOUR_MS + 1_800_000)
    assert await world.api.trips_ending_since(f"nobody-{uuid.uuid4().hex[:8]}", base) == []


async def a_trips_episodes_come_by_start_with_their_grade(world: World) -> None:
    start = world.now_ms - 300 * HOUR_MS
    trip_id = await world.given_trip(start, start + HOUR_MS, 4)
    episodes = await world.api.trip_episodes(trip_id)
    assert [e.type for e in episodes] == story_types(4)
    # the arranged first episode is graded high; a harsh one stored without a grade reads as medium (DOMAIN.md §4),
    # other kinds have none
    assert [e.grade for e in episodes] == ["high", "medium", None, "medium"]
    starts: Sequence[int] = [e.start_ms for e in episodes]
    assert list(starts) == sorted(starts) and start < starts[0] and starts[-1] < start + HOUR_MS


CONTRACT = [
    refused_readings_come_back_by_index_and_reason_and_the_rest_is_accepted,
    another_drivers_reading_refuses_the_whole_batch,
    a_batch_over_the_maximum_is_refused_whole,
    trips_ending_since_come_newest_first_without_older_ones,
    a_trips_episodes_come_by_start_with_their_grade,
]
