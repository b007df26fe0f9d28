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


# What a chaos run compares with its fault-free twin: every column a replay must reproduce, none that records
# when a row was written (created_at, recorded_at) or which request carried it.
LOG_DIGESTS = {
    "domain_events": "SELECT event_id, stream_id, stream_version, event_type, payload, occurred_at FROM domain_events",
    "trip_events": "SELECT event_id, stream_id, stream_version, event_type, payload, occurred_at FROM domain_events "
                   "WHERE event_type NOT IN ('risk_scored', 'premium_quoted')",
    "risk_events": "SELECT event_id, stream_id, stream_version, event_type, payload, occurred_at FROM domain_events "
                   "WHERE event_type IN ('risk_scored', 'premium_quoted')",
    "trips": "SELECT trip_id, driver_id, start_time, end_time, distance_m, duration_s, avg_speed_kmh, max_speed_kmh, "
             "harsh_braking_count, harsh_acceleration_count, harsh_cornering_count, speeding_moderate_s, "
             "speeding_severe_s, night_s, phone_use_moving_s, idle_s, crash_count, end_reason FROM trips",
    "risk_scores": "SELECT score_id, driver_id, scored_at, score, band, model_version, feature_hash, credibility, "
                   "explanation, trip_id FROM risk_scores",
    "policies": "SELECT driver_id, policy_number, current_premium, last_score, last_band FROM policies",
}


async def log_digests(conn: asyncpg.Connection) -> dict[str, dict]:
    """{name: {"rows": n, "md5": digest of the sorted rows}} for each of LOG_DIGESTS."""
    await conn.execute("SET statement_timeout = 0")
    out = {}
    for name, query in LOG_DIGESTS.items():
        row = await conn.fetchrow("SELECT count(*) AS n, md5(coalesce(string_agg(r::text, E'\\n' ORDER BY r::text),"
                                  f" '')) AS digest FROM ({query}) AS r")
        out[name] = {"rows": row["n"], "md5": row["digest"]}
    return out


async def scoring_progress(conn: asyncpg.Connection) -> tuple[int, int]:
    """(ended trips, trips with a stored score): the scorer is done when they are equal."""
    row = await conn.fetchrow("SELECT (SELECT count(*) FROM trips) AS trips, "
                              "(SELECT count(DISTINCT trip_id) FROM risk_scores WHERE trip_id IS NOT NULL) AS scored")
    return row["trips"], row["scored"]


async def log_rows(conn: asyncpg.Connection, name: str) -> set[str]:
    """The rows of one of LOG_DIGESTS as text (to show what differs when the digests do)."""
    return {r["row"] for r in await conn.fetch(f"SELECT r::text AS row FROM ({LOG_DIGESTS[name]}) AS r")}


async def copy_policies(source: asyncpg.Connection, target: asyncpg.Connection) -> int:
    """Every policy row of `source` into `target`'s empty table, ids included (two runs start from one state)."""
    records = await source.fetch("SELECT * FROM policies")
    if records:
        await target.copy_records_to_table("policies", records=[tuple(r) for r in records],
                                           columns=list(records[0].keys()))
    return len(records)
