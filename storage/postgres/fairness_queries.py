"""The rows fairness and drift read (issue 16 item 4): per driver scored in the window, the latest score and its
rate, the cohort inputs (date of birth, time zone), the active policy's premium, and the claims not rejected.
One statement for any number of drivers."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from storage.postgres.policies import POLICY_RANK

# The active policy by storage.postgres.policies' one rule (status 'active', ranked by POLICY_RANK).
DRIVER_WINDOW = f"""
WITH latest AS (
    SELECT DISTINCT ON (driver_id) driver_id, score, (explanation->>'rate')::float8 AS rate
    FROM risk_scores WHERE scored_at >= $1
    ORDER BY driver_id, scored_at DESC, recorded_at DESC
)
SELECT l.driver_id, l.score::float8 AS score, l.rate, d.date_of_birth, d.timezone,
       (SELECT p.current_premium::float8 FROM policies p WHERE p.driver_id = l.driver_id AND p.status = 'active'
        ORDER BY {POLICY_RANK} LIMIT 1) AS premium,
       (SELECT count(*) FROM claims c WHERE c.driver_id = l.driver_id AND c.occurred_at >= $1
        AND c.status <> 'rejected')::int AS claims
FROM latest l LEFT JOIN drivers d USING (driver_id)
ORDER BY l.driver_id
"""


async def driver_window(conn: asyncpg.Connection, since: datetime) -> list[asyncpg.Record]:
    return await conn.fetch(DRIVER_WINDOW, since)
