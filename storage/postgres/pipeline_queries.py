"""Read-side counters the operator's live view shows (bounded, index-backed queries)."""

from __future__ import annotations

import asyncpg

# Spelled out in the SQL (not a parameter) so the planner can use the partial index whose predicate
# is this same list (migration 0002).
HARSH_FILTER = (
    "event_type IN ('harsh_braking_detected', 'harsh_acceleration_detected', "
    "'harsh_cornering_detected', 'speeding_detected')"
)


async def pipeline_counters(pool: asyncpg.Pool) -> dict[str, int]:
    """Trips stored and harsh/speeding events detected (the partial index on domain_events serves it)."""
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            f"SELECT (SELECT count(*) FROM trips) AS trips, "
            f"(SELECT count(*) FROM domain_events WHERE {HARSH_FILTER}) AS harsh_events"
        )
    return dict(row)
