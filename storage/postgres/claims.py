"""Claims on PostgreSQL: opened inside the event store's batch transaction (`insert_claims`), read and decided by
`PostgresClaimStore` (the ClaimStore port). One statement per call (two for a page)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import asyncpg
import msgspec

from config.settings import Settings
from domain.claims import ClaimOpening, ClaimStatus
from storage.postgres.event_store_sql import ms_to_ts
from storage.postgres.pool import acquire, plain
from usecases.ports.read_models import Row

CLAIM_COLUMNS = ("claim_id, crash_event_id, driver_id, trip_id, occurred_at, trigger, peak_g, lat, lon, speed_kmh,"
                 " status, opened_at, decided_at, decided_by, note")

# One statement for any number of crashes; a claim already opened (a replay, a retried batch) is left alone,
# decision included.
INSERT_CLAIMS = f"""
INSERT INTO claims (claim_id, crash_event_id, driver_id, trip_id, occurred_at, trigger, peak_g, lat, lon, speed_kmh,
                    readings)
SELECT c.claim_id, c.crash_event_id, c.driver_id, c.trip_id, {ms_to_ts("c.occurred_at_ms")}, c.trigger, c.peak_g,
       c.lat, c.lon, c.speed_kmh, c.readings::jsonb
FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::uuid[], $5::bigint[], $6::text[], $7::float8[], $8::float8[],
            $9::float8[], $10::float8[], $11::text[])
     AS c(claim_id, crash_event_id, driver_id, trip_id, occurred_at_ms, trigger, peak_g, lat, lon, speed_kmh, readings)
ON CONFLICT (claim_id) DO NOTHING
"""

_LIST_WHERE = "WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR driver_id = $2)"


async def insert_claims(conn: asyncpg.Connection, openings: Sequence[ClaimOpening]) -> int:
    """Open the claims of a batch's crashes inside the caller's transaction; returns how many were new."""
    if not openings:
        return 0
    status = await conn.execute(
        INSERT_CLAIMS,
        [o.claim_id for o in openings], [o.crash_event_id for o in openings], [o.driver_id for o in openings],
        [o.trip_id for o in openings], [o.occurred_at_ms for o in openings], [o.trigger for o in openings],
        [o.peak_g for o in openings], [o.lat for o in openings], [o.lon for o in openings],
        [o.speed_kmh for o in openings], [msgspec.json.encode(o.readings).decode() for o in openings],
    )  # fmt: skip
    return int(status.rsplit(" ", 1)[1])


def _row(record: asyncpg.Record) -> dict:
    return {k: plain(v) for k, v in record.items()}


class PostgresClaimStore:
    """The ClaimStore port over a pool (pooled connections decode jsonb)."""

    def __init__(self, pool: asyncpg.Pool, settings: Settings) -> None:
        self._pool = pool
        self._settings = settings

    async def list_claims(self, *, status: str | None, driver_id: str | None, limit: int,
                          offset: int) -> tuple[int, Sequence[Row]]:
        async with acquire(self._pool, self._settings) as conn:
            total = await conn.fetchval(f"SELECT count(*) FROM claims {_LIST_WHERE}", status, driver_id)
            rows = await conn.fetch(
                f"SELECT {CLAIM_COLUMNS} FROM claims {_LIST_WHERE}"
                " ORDER BY occurred_at DESC, claim_id LIMIT $3 OFFSET $4", status, driver_id, limit, offset)
        return total, [_row(r) for r in rows]

    async def claim(self, claim_id: uuid.UUID) -> Row | None:
        async with acquire(self._pool, self._settings) as conn:
            row = await conn.fetchrow(f"SELECT {CLAIM_COLUMNS}, readings FROM claims WHERE claim_id = $1", claim_id)
        return None if row is None else _row(row)

    async def record_decision(self, claim_id: uuid.UUID, *, status: ClaimStatus, decided_by: uuid.UUID | None,
                              note: str | None, decided_at: datetime) -> Row | None:
        async with acquire(self._pool, self._settings) as conn:
            row = await conn.fetchrow(
                "UPDATE claims SET status = $2, decided_by = $3, note = $4, decided_at = $5"
                f" WHERE claim_id = $1 AND status = 'open' RETURNING {CLAIM_COLUMNS}, readings",
                claim_id, status, decided_by, note, decided_at)
        return None if row is None else _row(row)
