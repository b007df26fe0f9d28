"""The one rule for "the driver's active policy" (STYLE habit 14): the scorer prices it, the quote shows it,
the policies list puts it first. Among a driver's active policies the newest `effective_date` wins; ties go
to the lowest `policy_number`, then the lowest `policy_id`, so every caller picks the same row."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from domain.scoring import PolicyTerms
from storage.postgres.pool import plain

# ORDER BY tail shared by every query that ranks a driver's policies.
POLICY_RANK = "p.effective_date DESC, p.policy_number, p.policy_id"

ACTIVE_POLICIES = f"""
SELECT DISTINCT ON (p.driver_id) p.*
FROM policies p
WHERE p.driver_id = ANY($1::text[]) AND p.status = 'active'
ORDER BY p.driver_id, {POLICY_RANK}
"""


async def active_policies(conn: asyncpg.Connection, driver_ids: Sequence[str]) -> dict[str, asyncpg.Record]:
    """Driver id → its active policy row (every column of `policies`), for any number of drivers in one statement."""
    return {r["driver_id"]: r for r in await conn.fetch(ACTIVE_POLICIES, list(driver_ids))}


def policy_terms(row: asyncpg.Record) -> PolicyTerms:
    """A `policies` row as pricing needs it (the scorer's chain, a dispute's re-score)."""
    return PolicyTerms(policy_id=plain(row["policy_id"]), base_premium=row["base_premium"],
                       current_premium=row["current_premium"], per_km_rate=row["per_km_rate"], currency=row["currency"])
