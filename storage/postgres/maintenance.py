"""PostgresMaintenance: the MaintenanceStore over one connection (usecases/ports/maintenance.py).

The maintenance lock is a session-level advisory lock on this connection, tried without waiting: a second
actor, or `autoins maintenance run` while the actor works, gets "no" at once and records a skipped run.
Partitions and retention reuse storage/postgres/partitions.py and archive.py (one home for each rule).
Call outside a transaction (ensure and retain run their own short transactions).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg

from domain.maintenance import LastRun, MaintenanceTask, PartitionStats, RunOutcome
from storage.postgres.archive import retain
from storage.postgres.fairness_queries import PostgresFairnessReader
from storage.postgres.partitions import TABLE_NAMES, ensure_window, list_partitions
from storage.postgres.pool import quote_ident
from usecases.ports.fairness import FairnessReader, ModelReference, ReferenceLoader
from usecases.ports.maintenance import RelationSize, UnusedIndex

# pg_advisory_lock(bigint) key held for one maintenance run: the bytes "autoinsm" (retention's is "autoinsr").
MAINTENANCE_LOCK_KEY = int.from_bytes(b"autoinsm", "big")

_LAST_RUNS_SQL = """
SELECT DISTINCT ON (task) task, started_at, outcome FROM maintenance_runs
WHERE outcome <> 'skipped' ORDER BY task, started_at DESC
"""

_STATS_SQL = """
SELECT s.relname AS partition, p.relname AS parent, s.n_live_tup AS live_rows,
       s.n_mod_since_analyze AS changed, greatest(s.last_analyze, s.last_autoanalyze) AS analyzed_at,
       c.reltuples AS reltuples
FROM pg_stat_user_tables s
JOIN pg_class c ON c.oid = s.relid
JOIN pg_inherits i ON i.inhrelid = s.relid
JOIN pg_class p ON p.oid = i.inhparent
WHERE p.relname = ANY($1::text[]) AND c.relnamespace = to_regnamespace(current_schema())
"""

# Plain and partitioned tables that are not partitions; a partitioned table's size is its partitions' sum.
_TABLE_SIZES_SQL = """
SELECT c.relname AS name,
       CASE WHEN c.relkind = 'p' THEN coalesce((
           SELECT sum(pg_total_relation_size(i.inhrelid)) FROM pg_inherits i WHERE i.inhparent = c.oid), 0)
       ELSE pg_total_relation_size(c.oid) END::bigint AS size_bytes
FROM pg_class c
WHERE c.relkind IN ('r', 'p') AND c.relnamespace = to_regnamespace(current_schema()) AND NOT c.relispartition
ORDER BY c.relname
"""

# Unique indexes enforce constraints whether or not a query ever scans them: not reported as unused. A partition's
# index is counted under its partitioned parent index: an old month's index going unscanned is normal, the parent
# index (every month together) never scanned is the finding.
_UNUSED_INDEXES_SQL = """
WITH leaf AS (
    SELECT s.idx_scan, pg_relation_size(s.indexrelid) AS size_bytes, coalesce(p.inhparent, s.indexrelid) AS index_oid
    FROM pg_stat_user_indexes s
    JOIN pg_index x ON x.indexrelid = s.indexrelid
    LEFT JOIN pg_inherits p ON p.inhrelid = s.indexrelid
    WHERE NOT x.indisunique AND s.schemaname = current_schema()
)
SELECT t.relname AS table_name, i.relname AS index_name, sum(leaf.size_bytes)::bigint AS size_bytes
FROM leaf
JOIN pg_index x ON x.indexrelid = leaf.index_oid
JOIN pg_class i ON i.oid = leaf.index_oid
JOIN pg_class t ON t.oid = x.indrelid
GROUP BY t.relname, i.relname
HAVING sum(leaf.idx_scan) = 0
ORDER BY t.relname, i.relname
"""


class PostgresMaintenance:
    def __init__(self, conn: asyncpg.Connection, archive_dir: Path,
                 load_reference: ReferenceLoader | None = None) -> None:
        self.conn = conn
        self.archive_dir = archive_dir
        self.load_reference = load_reference

    def fairness(self) -> FairnessReader:
        return PostgresFairnessReader(self.conn)

    async def model_reference(self, model_version: str) -> ModelReference:
        if self.load_reference is None:
            return ModelReference(model_version, None, "this run was given no models directory")
        return await self.load_reference(model_version)

    @asynccontextmanager
    async def exclusive(self) -> AsyncIterator[bool]:
        held = bool(await self.conn.fetchval("SELECT pg_try_advisory_lock($1)", MAINTENANCE_LOCK_KEY))
        try:
            yield held
        finally:
            if held:
                await self.conn.execute("SELECT pg_advisory_unlock($1)", MAINTENANCE_LOCK_KEY)

    async def last_runs(self) -> dict[MaintenanceTask, LastRun]:
        known = {t.value: t for t in MaintenanceTask}
        return {known[r["task"]]: LastRun(r["started_at"], RunOutcome(r["outcome"]))
                for r in await self.conn.fetch(_LAST_RUNS_SQL) if r["task"] in known}

    async def begin(self, task: MaintenanceTask, started_at: datetime) -> int:
        return await self.conn.fetchval(
            "INSERT INTO maintenance_runs (task, started_at) VALUES ($1, $2) RETURNING run_id", task.value, started_at
        )

    async def finish(self, run_id: int, finished_at: datetime, outcome: RunOutcome, details: dict[str, Any]) -> None:
        await self.conn.execute(
            "UPDATE maintenance_runs SET finished_at = $2, outcome = $3, details = $4 WHERE run_id = $1",
            run_id, finished_at, outcome.value, details,
        )

    async def record_skipped(self, task: MaintenanceTask, at: datetime, details: dict[str, Any]) -> None:
        await self.conn.execute(
            "INSERT INTO maintenance_runs (task, started_at, finished_at, outcome, details) "
            "VALUES ($1, $2, $2, 'skipped', $3)",
            task.value, at, details,
        )

    async def ensure_partitions(self, now: datetime, retention_months: int, ahead_months: int) -> list[str]:
        return await ensure_window(self.conn, now, retention_months, ahead_months)

    async def retain(self, now: datetime, retention_months: int) -> dict[str, Any]:
        report = await retain(self.conn, now, retention_months, self.archive_dir)
        return {
            "cutoff": str(report.cutoff),
            "archived": [{"partition": a.partition, "rows": a.rows, "archive_file": str(a.archive_file),
                          "sha256": a.sha256, "reused": a.reused} for a in report.archived],
            "skipped": [{"partition": s.partition, "reason": s.reason} for s in report.skipped],
        }

    async def partition_stats(self) -> list[PartitionStats]:
        return [
            PartitionStats(
                table=r["parent"], partition=r["partition"], live_rows=r["live_rows"],
                changed_since_analyze=r["changed"], analyzed_at=r["analyzed_at"],
                rows_at_analyze=None if r["reltuples"] is None or r["reltuples"] < 0 else int(r["reltuples"]),
            )
            for r in await self.conn.fetch(_STATS_SQL, list(TABLE_NAMES))
        ]

    async def analyze(self, partitions: Sequence[str]) -> None:
        for name in partitions:  # one at a time: each ANALYZE is its own short transaction
            await self.conn.execute(f"ANALYZE {quote_ident(name)}")

    async def sizes(self) -> list[RelationSize]:
        rows = await self.conn.fetch(_TABLE_SIZES_SQL)
        tables = [RelationSize("table", r["name"], None, r["size_bytes"]) for r in rows]
        partitions = [RelationSize("partition", p.partition, p.table, p.size_bytes)
                      for p in await list_partitions(self.conn) if p.attached]
        return tables + partitions

    async def unused_indexes(self) -> list[UnusedIndex]:
        return [UnusedIndex(r["table_name"], r["index_name"], r["size_bytes"])
                for r in await self.conn.fetch(_UNUSED_INDEXES_SQL)]
