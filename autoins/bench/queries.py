"""The benchmark's own SQL: what a run stored, and what the server did meanwhile (WAL, checkpoints).

Read-only diagnostics of scratch databases, kept here so the measuring code stays free of SQL. The WAL
position and the checkpoint counters are server-wide: other databases' activity counts too.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

STORED = "SELECT count(*) AS rows, count(DISTINCT event_id) AS distinct_ids FROM telematics_events"
SERVER_PROGRESS = """
SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint AS wal_bytes,
       checkpoints_timed + checkpoints_req AS checkpoints
FROM pg_stat_bgwriter
"""


@dataclass(frozen=True, slots=True)
class ServerProgress:
    wal_bytes: int
    checkpoints: int

    def since(self, earlier: ServerProgress) -> dict:
        """WAL written (MB) and checkpoints started between two readings."""
        return {"wal_mb": round((self.wal_bytes - earlier.wal_bytes) / 2**20, 1),
                "checkpoints": self.checkpoints - earlier.checkpoints}


async def server_progress(conn: asyncpg.Connection) -> ServerProgress:
    row = await conn.fetchrow(SERVER_PROGRESS)
    return ServerProgress(int(row["wal_bytes"]), int(row["checkpoints"]))


async def stored_counts(conn: asyncpg.Connection) -> dict:
    """Rows and distinct event ids in telematics_events; domain events and trips (no timeout: 1M rows)."""
    await conn.execute("SET statement_timeout = 0")
    counts = await conn.fetchrow(STORED)
    return {
        "rows": counts["rows"],
        "distinct_ids": counts["distinct_ids"],
        "domain_events": await conn.fetchval("SELECT count(*) FROM domain_events"),
        "trips": await conn.fetchval("SELECT count(*) FROM trips"),
    }
