"""Read models the API serves to drivers: profile, trips, risk scores, policies (SQL only; asyncpg). A trip's
episodes and readings: storage/postgres/trip_detail.py.

Every function is ONE statement (or two for a page: its count and its rows), whatever the page size or
the data volume, so a request is a small constant number of queries (no N+1). Rows come back as
asyncpg Records (mappings); the use cases shape them. `PostgresDriverReadModels` (end of the file) is the
adapter of the `usecases.ports.read_models.DriverReadModels` port.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import asyncpg

from config.settings import Settings
from domain.events import DisputeRescored, PremiumQuoted, decode_event
from domain.scoring import PolicyTerms, risk_stream_id
from domain.trip_summary import TripSummary
from storage.postgres.event_store import trip_summary_of
from storage.postgres.event_store_sql import TRIP_COLUMNS as STORED_TRIP_COLUMNS
from storage.postgres.event_store_sql import ts_to_ms
from storage.postgres.policies import ACTIVE_POLICIES, POLICY_RANK
from storage.postgres.pool import acquire, plain
from storage.postgres.score_store import LOAD_WINDOWS
from storage.postgres.trip_detail import trip_bounds, trip_episodes, trip_positions
from usecases.ports.read_models import EpisodesPage, MaybePosition, QuoteBasis, Row, RowsPage, TripBounds

DRIVER_COLUMNS = (
    "driver_id, first_name, last_name, email, phone, license_number, date_of_birth, timezone, is_active,"
    " created_at, updated_at"
)
TRIP_COLUMNS = (
    "trip_id, driver_id, start_time, end_time, distance_m, duration_s, avg_speed_kmh, max_speed_kmh,"
    " harsh_braking_count, harsh_acceleration_count, harsh_cornering_count, speeding_moderate_s,"
    " speeding_severe_s, night_s, phone_use_moving_s, idle_s, crash_count, end_reason, harsh_braking_low_count,"
    " harsh_braking_high_count, harsh_acceleration_low_count, harsh_acceleration_high_count,"
    " harsh_cornering_low_count, harsh_cornering_high_count, quality_flags"
)
SCORE_COLUMNS = (
    "score_id, driver_id, scored_at, score, band, model_version, feature_hash, credibility, explanation, trip_id"
)
POLICY_COLUMNS = (
    "policy_id, driver_id, policy_number, status, base_premium, current_premium, per_km_rate, currency,"
    " effective_date, expiration_date, last_score, last_band, vehicle_use, created_at, updated_at"
)


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


# -- the quote's inputs --------------------------------------------------------------------------------

# One statement: the active policy (THE rule, storage.postgres.policies, applied to one driver), the latest
# `premium_quoted` of the risk stream (stream_id, stream_version index) and the latest trip end (device time).
QUOTE_BASIS = f"""
SELECT d.known, p.policy_id, p.base_premium, p.current_premium, p.per_km_rate, p.currency,
       q.payload AS stored_quote, t.end_ms AS latest_trip_end_ms
FROM (SELECT EXISTS (SELECT 1 FROM drivers WHERE driver_id = $1) AS known) d
LEFT JOIN LATERAL ({ACTIVE_POLICIES.replace("$1::text[]", "ARRAY[$1::text]")}) p ON true
LEFT JOIN LATERAL (SELECT e.payload::text AS payload FROM domain_events e
                   WHERE e.stream_id = $2 AND (e.event_type = 'premium_quoted'
                         OR e.event_type = 'dispute_rescored' AND e.payload->>'premium' IS NOT NULL)
                   ORDER BY e.stream_version DESC LIMIT 1) q ON true
LEFT JOIN LATERAL (SELECT {ts_to_ms("max(end_time)")} AS end_ms FROM trips WHERE driver_id = $1) t ON true
"""
_TRIP_FIELDS = [name for name, _ in STORED_TRIP_COLUMNS]


async def quote_basis(conn: asyncpg.Connection, driver_id: str) -> tuple[bool, QuoteBasis]:
    """(driver exists, the quote's inputs). One statement."""
    row = await conn.fetchrow(QUOTE_BASIS, driver_id, risk_stream_id(driver_id))
    policy = None
    if row["policy_id"] is not None:
        policy = PolicyTerms(policy_id=plain(row["policy_id"]), base_premium=row["base_premium"],
                             current_premium=row["current_premium"], per_km_rate=row["per_km_rate"],
                             currency=row["currency"])
    stored = decode_event(row["stored_quote"]) if row["stored_quote"] is not None else None
    if stored is not None and not isinstance(stored, PremiumQuoted | DisputeRescored):  # filtered by event_type
        stored = None
    return bool(row["known"]), QuoteBasis(policy, stored, row["latest_trip_end_ms"])


async def window_trips(conn: asyncpg.Connection, driver_id: str, from_ms: int, to_ms: int) -> list[TripSummary]:
    """Trips ended in (from_ms, to_ms], start order: the scorer's own window query (score_store.LOAD_WINDOWS)."""
    rows = await conn.fetch(LOAD_WINDOWS, [driver_id], [from_ms], [to_ms])
    return [trip_summary_of(r) for r in rows]


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


# -- the port -----------------------------------------------------------------------------------------


class PostgresDriverReadModels:
    """usecases.ports.read_models.DriverReadModels over an asyncpg pool; each call holds one connection."""

    def __init__(self, pool: asyncpg.Pool, settings: Settings) -> None:
        self.pool = pool
        self.settings = settings

    async def profile(self, driver_id: str) -> Row | None:
        async with acquire(self.pool, self.settings) as conn:
            return await get_driver(conn, driver_id)

    async def trips_page(self, driver_id: str, limit: int, offset: int) -> RowsPage:
        async with acquire(self.pool, self.settings) as conn:
            return RowsPage(*await trips_page(conn, driver_id, limit, offset))

    async def trip(self, trip_id: uuid.UUID) -> Row | None:
        async with acquire(self.pool, self.settings) as conn:
            return await get_trip(conn, trip_id)

    async def trip_episodes(self, trip_id: uuid.UUID, limit: int, offset: int) -> EpisodesPage | None:
        async with acquire(self.pool, self.settings) as conn:
            return await trip_episodes(conn, trip_id, limit, offset)

    async def trip_bounds(self, trip_id: uuid.UUID) -> TripBounds | None:
        async with acquire(self.pool, self.settings) as conn:
            return await trip_bounds(conn, trip_id)

    async def trip_positions(self, trip: TripBounds, limit: int) -> list[MaybePosition]:
        async with acquire(self.pool, self.settings) as conn:
            return await trip_positions(conn, trip, limit)

    async def latest_score(self, driver_id: str) -> tuple[bool, Row | None]:
        async with acquire(self.pool, self.settings) as conn:
            return await latest_score(conn, driver_id)

    async def score_history(self, driver_id: str, limit: int, offset: int) -> RowsPage:
        async with acquire(self.pool, self.settings) as conn:
            return RowsPage(*await score_history(conn, driver_id, limit, offset))

    async def policies(self, driver_id: str) -> tuple[bool, Sequence[Row]]:
        async with acquire(self.pool, self.settings) as conn:
            return await driver_policies(conn, driver_id)

    async def quote_basis(self, driver_id: str) -> QuoteBasis:
        async with acquire(self.pool, self.settings) as conn:
            return (await quote_basis(conn, driver_id))[1]

    async def window_trips(self, driver_id: str, from_ms: int, to_ms: int) -> list[TripSummary]:
        async with acquire(self.pool, self.settings) as conn:
            return await window_trips(conn, driver_id, from_ms, to_ms)

    async def recently_active(self, since: datetime, limit: int) -> list[str]:
        async with acquire(self.pool, self.settings) as conn:
            return await recently_active_drivers(conn, since, limit)
