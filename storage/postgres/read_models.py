"""Read models the API serves to drivers: profile, trips, risk scores, policies (SQL only; asyncpg).

Every function is ONE statement (or two for a page: its count and its rows), whatever the page size or
the data volume, so a request is a small constant number of queries (no N+1). Rows come back as
asyncpg Records; callers shape them. Write errors are translated to `Conflict` / `MissingReference`
here, where the SQLSTATE is known, so routers answer 409/422 with the message.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from storage.postgres.policies import POLICY_RANK

DRIVER_COLUMNS = (
    "driver_id, first_name, last_name, email, phone, license_number, date_of_birth, timezone, is_active,"
    " created_at, updated_at"
)
TRIP_COLUMNS = (
    "trip_id, driver_id, start_time, end_time, distance_m, duration_s, avg_speed_kmh, max_speed_kmh,"
    " harsh_braking_count, harsh_acceleration_count, harsh_cornering_count, speeding_moderate_s,"
    " speeding_severe_s, night_s, phone_use_moving_s, idle_s, crash_count, end_reason"
)
SCORE_COLUMNS = (
    "score_id, driver_id, scored_at, score, band, model_version, feature_hash, credibility, explanation, trip_id"
)
POLICY_COLUMNS = (
    "policy_id, driver_id, policy_number, status, base_premium, current_premium, per_km_rate, currency,"
    " effective_date, expiration_date, last_score, last_band, created_at, updated_at"
)


class Conflict(Exception):
    """A write collided with a unique key or a reference (→ HTTP 409); the message names the field."""


class MissingReference(Exception):
    """A write pointed at a row that does not exist (→ HTTP 422); the message names it."""


# -- drivers ----------------------------------------------------------------------------------------


async def get_driver(conn: asyncpg.Connection, driver_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {DRIVER_COLUMNS} FROM drivers WHERE driver_id = $1", driver_id)


async def recently_active_drivers(conn: asyncpg.Connection, since: datetime, limit: int) -> list[str]:
    """Drivers with a trip ending after `since`, newest first, at most `limit` (cache warming)."""
    rows = await conn.fetch(
        "SELECT driver_id FROM trips WHERE end_time > $1 GROUP BY driver_id ORDER BY max(end_time) DESC LIMIT $2",
        since,
        limit,
    )
    return [r["driver_id"] for r in rows]


# -- trips ------------------------------------------------------------------------------------------


async def trips_page(
    conn: asyncpg.Connection, driver_id: str, limit: int, offset: int
) -> tuple[bool, int, list[asyncpg.Record]]:
    """(driver exists, total trips, the page newest first). Two statements; the page walks the
    (driver_id, start_time, end_time) index backwards."""
    head = await conn.fetchrow(
        "SELECT EXISTS (SELECT 1 FROM drivers WHERE driver_id = $1) AS known,"
        " (SELECT count(*) FROM trips WHERE driver_id = $1) AS total",
        driver_id,
    )
    if not head["total"] or offset >= head["total"]:
        return head["known"], head["total"], []
    rows = await conn.fetch(
        f"SELECT {TRIP_COLUMNS} FROM trips WHERE driver_id = $1"
        " ORDER BY start_time DESC, end_time DESC, trip_id LIMIT $2 OFFSET $3",
        driver_id,
        limit,
        offset,
    )
    return head["known"], head["total"], rows


async def get_trip(conn: asyncpg.Connection, trip_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {TRIP_COLUMNS} FROM trips WHERE trip_id = $1", trip_id)


async def exposure_km(conn: asyncpg.Connection, driver_id: str, since: datetime) -> tuple[float, int]:
    """(km driven, trips) in trips ending after `since`: the usage part of a premium quote."""
    row = await conn.fetchrow(
        "SELECT coalesce(sum(distance_m), 0) / 1000.0 AS km, count(*) AS trips FROM trips"
        " WHERE driver_id = $1 AND end_time > $2",
        driver_id,
        since,
    )
    return float(row["km"]), int(row["trips"])


# -- risk scores ------------------------------------------------------------------------------------


async def latest_score(conn: asyncpg.Connection, driver_id: str) -> tuple[bool, asyncpg.Record | None]:
    """(driver exists, the newest risk_scores row or None before any scoring). One statement on the
    (driver_id, scored_at DESC, recorded_at DESC) index."""
    row = await conn.fetchrow(
        "SELECT d.known, s.* FROM (SELECT EXISTS (SELECT 1 FROM drivers WHERE driver_id = $1) AS known) d"
        f" LEFT JOIN LATERAL (SELECT {SCORE_COLUMNS} FROM risk_scores WHERE driver_id = $1"
        " ORDER BY scored_at DESC, recorded_at DESC LIMIT 1) s ON true",
        driver_id,
    )
    return bool(row["known"]), (row if row["score_id"] is not None else None)


async def score_history(
    conn: asyncpg.Connection, driver_id: str, limit: int, offset: int
) -> tuple[bool, int, list[asyncpg.Record]]:
    """(driver exists, total scores, the page newest first). Two statements."""
    head = await conn.fetchrow(
        "SELECT EXISTS (SELECT 1 FROM drivers WHERE driver_id = $1) AS known,"
        " (SELECT count(*) FROM risk_scores WHERE driver_id = $1) AS total",
        driver_id,
    )
    if not head["total"] or offset >= head["total"]:
        return head["known"], head["total"], []
    rows = await conn.fetch(
        f"SELECT {SCORE_COLUMNS} FROM risk_scores WHERE driver_id = $1"
        " ORDER BY scored_at DESC, recorded_at DESC, score_id LIMIT $2 OFFSET $3",
        driver_id,
        limit,
        offset,
    )
    return head["known"], head["total"], rows


# -- policies ---------------------------------------------------------------------------------------


async def driver_policies(conn: asyncpg.Connection, driver_id: str) -> tuple[bool, list[asyncpg.Record]]:
    """(driver exists, their policies: active first, then newest effective date). One statement."""
    rows = await conn.fetch(
        f"SELECT d.known, p.* FROM (SELECT EXISTS (SELECT 1 FROM drivers WHERE driver_id = $1) AS known) d"
        f" LEFT JOIN LATERAL (SELECT {POLICY_COLUMNS} FROM policies WHERE driver_id = $1) p ON true"
        f" ORDER BY p.status = 'active' DESC, {POLICY_RANK}",
        driver_id,
    )
    known = bool(rows[0]["known"]) if rows else False
    return known, [r for r in rows if r["policy_id"] is not None]
