"""A trip's episodes and readings for the trip detail routes (SQL only; asyncpg). One statement each.

Episodes. A trip's detector events are the driver's stream (`domain_events`, stream id = driver id) strictly
between its `trip_started` and `trip_ended` (domain/trip_machine.py: events found before a trip is announced
follow its `trip_started`; the closing episodes and a pending crash precede `trip_ended`). Both ends are found by
primary key: their ids are uuid5 of the trip id (domain.ids.trip_event_id) and their `occurred_at` is the trip's
start / end, which also prunes `domain_events` to one month each. The episodes are then an index range on
`domain_events_stream_id_version_idx` (stream_id, stream_version) in the months from the trip's start on
(run-time pruning on `occurred_at >= start`); a `trip_id` check in the payload guards the range. No upper
`occurred_at` bound: a crash at a standstill may be detected after the point the trip's end is backdated to.

Speeding and phone-use events carry no position: each row of the page looks up the driver's reading at the
episode's start (`telematics_events_driver_id_ts_idx`, one partition pruned at run time).

Readings. (driver_id, ts) between the trip's start and end: an index range on `telematics_events_driver_id_ts_idx`
(walked backwards for time order) in the months the trip spans, the others pruned at plan or executor start.
"""

from __future__ import annotations

import uuid

import asyncpg

from domain.ids import trip_event_id
from domain.trip_episodes import EPISODE_TAGS
from usecases.ports.read_models import EpisodesPage, MaybePosition, StoredEpisode, TripBounds

_TRIP_EPISODES_WHERE = """
    WHERE e.stream_id = t.driver_id
      AND e.stream_version > b.first_version AND e.stream_version < b.last_version
      AND e.occurred_at >= t.start_time
      AND e.event_type = ANY($4::text[])
      AND e.payload->>'trip_id' = t.trip_id::text"""

TRIP_EPISODES = f"""
SELECT t.driver_id, c.total, p.payload, p.lat, p.lon
FROM trips t
CROSS JOIN LATERAL (
    SELECT (SELECT s.stream_version FROM domain_events s WHERE s.event_id = $2 AND s.occurred_at = t.start_time)
               AS first_version,
           (SELECT s.stream_version FROM domain_events s WHERE s.event_id = $3 AND s.occurred_at = t.end_time)
               AS last_version
) b
CROSS JOIN LATERAL (SELECT count(*) AS total FROM domain_events e {_TRIP_EPISODES_WHERE}) c
LEFT JOIN LATERAL (
    SELECT page.payload::text AS payload, page.occurred_at, page.stream_version, r.lat, r.lon
    FROM (SELECT e.payload, e.occurred_at, e.stream_version FROM domain_events e {_TRIP_EPISODES_WHERE}
          ORDER BY e.occurred_at, e.stream_version LIMIT $5 OFFSET $6) page
    LEFT JOIN LATERAL (
        SELECT r.lat, r.lon FROM telematics_events r
        WHERE r.driver_id = t.driver_id AND r.ts = page.occurred_at
        ORDER BY r.event_id LIMIT 1
    ) r ON NOT (page.payload ? 'lat')
) p ON true
WHERE t.trip_id = $1
ORDER BY p.occurred_at, p.stream_version
"""

TRIP_BOUNDS = "SELECT trip_id, driver_id, start_time, end_time FROM trips WHERE trip_id = $1"

TRIP_POSITIONS = """
SELECT lat, lon FROM telematics_events
WHERE driver_id = $1 AND ts >= $2 AND ts <= $3
ORDER BY ts, event_id
LIMIT $4
"""


async def trip_episodes(conn: asyncpg.Connection, trip_id: uuid.UUID, limit: int, offset: int) -> EpisodesPage | None:
    """The trip's owner and a page of its episodes (see the module docstring); None for an unknown trip."""
    rows = await conn.fetch(TRIP_EPISODES, trip_id, trip_event_id("trip_started", trip_id),
                            trip_event_id("trip_ended", trip_id), list(EPISODE_TAGS), limit, offset)
    if not rows:
        return None
    episodes = [StoredEpisode(r["payload"], None if r["lat"] is None else (r["lat"], r["lon"]))
                for r in rows if r["payload"] is not None]
    return EpisodesPage(driver_id=rows[0]["driver_id"], total=rows[0]["total"], rows=episodes)


async def trip_bounds(conn: asyncpg.Connection, trip_id: uuid.UUID) -> TripBounds | None:
    row = await conn.fetchrow(TRIP_BOUNDS, trip_id)
    return None if row is None else TripBounds(row["trip_id"], row["driver_id"], row["start_time"], row["end_time"])


async def trip_positions(conn: asyncpg.Connection, trip: TripBounds, limit: int) -> list[MaybePosition]:
    rows = await conn.fetch(TRIP_POSITIONS, trip.driver_id, trip.start_time, trip.end_time, limit)
    return [(r["lat"], r["lon"]) for r in rows]
