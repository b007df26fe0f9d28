"""FairnessReader over one asyncpg connection (issue 16 item 4): per driver scored in the window, the latest score
with its feature hash and rate, the cohort inputs (date of birth, time zone), the active policy's premium and vehicle
use, and the claims not rejected, in one statement for any number of drivers; and the trips of score windows, with
the scorer's own statement (storage.postgres.score_store.LOAD_WINDOWS)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg

from domain.trip_summary import TripSummary
from storage.postgres.event_store import trip_summary_of
from storage.postgres.event_store_sql import ts_to_ms
from storage.postgres.policies import POLICY_RANK
from storage.postgres.score_store import LOAD_WINDOWS
from usecases.ports.fairness import ScoredDriver
from usecases.ports.score_store import TripSpan

# The active policy by storage.postgres.policies' one rule (status 'active', ranked by POLICY_RANK).
DRIVER_WINDOW = f"""
WITH latest AS (
    SELECT DISTINCT ON (driver_id) driver_id, scored_at, model_version, feature_hash, score,
           (explanation->>'rate')::float8 AS rate
    FROM risk_scores WHERE scored_at >= $1
    ORDER BY driver_id, scored_at DESC, recorded_at DESC
)
SELECT l.driver_id, {ts_to_ms("l.scored_at")} AS scored_at_ms, l.model_version, l.feature_hash,
       l.score::float8 AS score, l.rate, d.date_of_birth, d.timezone,
       p.current_premium::float8 AS premium, p.vehicle_use,
       (SELECT count(*) FROM claims c WHERE c.driver_id = l.driver_id AND c.occurred_at >= $1
        AND c.status <> 'rejected')::int AS claims
FROM latest l
LEFT JOIN drivers d USING (driver_id)
LEFT JOIN LATERAL (SELECT p.current_premium, p.vehicle_use FROM policies p
                   WHERE p.driver_id = l.driver_id AND p.status = 'active' ORDER BY {POLICY_RANK} LIMIT 1) p ON true
ORDER BY l.driver_id
"""


class PostgresFairnessReader:
    """usecases.ports.fairness.FairnessReader on a connection the caller owns (a request's, the maintenance run's)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def scored_drivers(self, since: datetime) -> list[ScoredDriver]:
        return [ScoredDriver(**dict(r)) for r in await self._conn.fetch(DRIVER_WINDOW, since)]

    async def trips(self, spans: Sequence[TripSpan]) -> dict[str, list[TripSummary]]:
        rows = await self._conn.fetch(LOAD_WINDOWS, [s.driver_id for s in spans], [s.from_ms for s in spans],
                                      [s.to_ms for s in spans])
        out: dict[str, list[TripSummary]] = {s.driver_id: [] for s in spans}
        for r in rows:
            out[r["driver_id"]].append(trip_summary_of(r))
        return out
