"""Cheap queries behind /health/ready and the business gauges (plan §5.1), every 30 s from one replica.

Each is one indexed or small-table query: drivers (a row per driver), the latest score per driver (index
on risk_scores (driver_id, scored_at DESC, recorded_at DESC)), stored offsets (a row per partition), trip starts/ends of
the last day (domain_events partitions pruned by occurred_at).
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

_BUSINESS = """
SELECT
  (SELECT count(*) FROM drivers WHERE is_active) AS active_drivers,
  (SELECT coalesce(avg(score), 0)::float8 FROM (
     SELECT DISTINCT ON (driver_id) score FROM risk_scores ORDER BY driver_id, scored_at DESC, recorded_at DESC) latest)
     AS average_risk_score,
  (SELECT coalesce(sum(next_offset), 0)::bigint FROM consumer_offsets WHERE topic = $1) AS events_total,
  (SELECT count(*) FROM (
     SELECT DISTINCT ON (stream_id) event_type FROM domain_events
     WHERE event_type IN ('trip_started', 'trip_ended') AND occurred_at > now() - interval '1 day'
     ORDER BY stream_id, occurred_at DESC, stream_version DESC) latest
   WHERE event_type = 'trip_started') AS active_trips
"""


@dataclass(frozen=True, slots=True)
class BusinessCounts:
    active_drivers: int
    active_trips: int
    average_risk_score: float
    events_total: int  # messages of the events topic covered by stored offsets (durable or dead-lettered)


async def business_counts(conn: asyncpg.Connection, events_topic: str) -> BusinessCounts:
    row = await conn.fetchrow(_BUSINESS, events_topic)
    return BusinessCounts(
        active_drivers=int(row["active_drivers"]),
        active_trips=int(row["active_trips"]),
        average_risk_score=float(row["average_risk_score"]),
        events_total=int(row["events_total"]),
    )


async def ping(conn: asyncpg.Connection) -> None:
    """`SELECT 1`: the server answers queries (readiness)."""
    await conn.fetchval("SELECT 1")
