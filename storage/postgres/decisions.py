"""Reads a driver's past decisions from the log for `autoins explain` (SQL only): the latest `risk_scored` or
`dispute_rescored` of `risk:{driver_id}` that occurred at or before a time, and the `premium_quoted` that follows
a `risk_scored` (the scorer appends them together)."""

from __future__ import annotations

import asyncpg

from domain.decisions import Decision, decision_of
from domain.events import DisputeRescored, PremiumQuoted, RiskScored, decode_event
from domain.scoring import risk_stream_id
from storage.postgres.event_store_sql import ms_to_ts

DRIVER_EXISTS = "SELECT EXISTS (SELECT 1 FROM drivers WHERE driver_id = $1)"
LATEST_DECISION = f"""
SELECT stream_version, payload::text AS payload FROM domain_events
WHERE stream_id = $1 AND event_type IN ('risk_scored', 'dispute_rescored') AND occurred_at <= {ms_to_ts("$2::bigint")}
ORDER BY stream_version DESC LIMIT 1
"""
NEXT_EVENT = "SELECT payload::text AS payload FROM domain_events WHERE stream_id = $1 AND stream_version = $2"


async def driver_exists(conn: asyncpg.Connection, driver_id: str) -> bool:
    return await conn.fetchval(DRIVER_EXISTS, driver_id)


async def decision_at(conn: asyncpg.Connection, driver_id: str, at_ms: int) -> Decision | None:
    """The decision in force at `at_ms` (None: none yet)."""
    stream = risk_stream_id(driver_id)
    row = await conn.fetchrow(LATEST_DECISION, stream, at_ms)
    if row is None:
        return None
    scored = decode_event(row["payload"])
    assert isinstance(scored, RiskScored | DisputeRescored)
    quoted = None
    if isinstance(scored, RiskScored):
        following = await conn.fetchval(NEXT_EVENT, stream, row["stream_version"] + 1)
        event = None if following is None else decode_event(following)
        quoted = event if isinstance(event, PremiumQuoted) else None
    return decision_of(scored, quoted)
