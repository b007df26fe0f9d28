"""Monthly partitions of `telematics_events` and `domain_events` (plan §1.1): create ahead, on demand, list.

Month arithmetic and the retention decision are pure (`domain.partition_calendar`); this module only
talks to PostgreSQL. Partitions are UTC months named `<table>_yYYYYmMM`.

A month is created as a plain table (`LIKE` the parent) and then ATTACHed in the same transaction:
ATTACH takes only SHARE UPDATE EXCLUSIVE on the parent, so creating next month's partition, or an
old month on demand, does not block the pipeline's inserts (`CREATE TABLE … PARTITION OF` would take
ACCESS EXCLUSIVE on the parent). Attaching builds the parent's indexes on the new partition.

Concurrency: each month is created in its own transaction under `pg_advisory_xact_lock(table, month)`,
re-checking the catalog after the lock; a `DuplicateTableError` from a creator that does not take
the lock is tolerated. Call these functions outside a transaction.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import asyncpg

from domain.partition_calendar import (
    Month,
    month_of_partition,
    months_of_epoch_ms,
    months_of_instants,
    partition_name,
    window_months,
)
from storage.postgres.pool import quote_ident


@dataclass(frozen=True, slots=True)
class PartitionedTable:
    """A monthly range-partitioned table: its partition key and primary key (archive sort order)."""

    name: str
    partition_key: str
    primary_key: tuple[str, ...]


PARTITIONED_TABLES: dict[str, PartitionedTable] = {
    "telematics_events": PartitionedTable("telematics_events", "ts", ("event_id", "ts")),
    "domain_events": PartitionedTable("domain_events", "occurred_at", ("event_id", "occurred_at")),
}
TABLE_NAMES: tuple[str, ...] = tuple(PARTITIONED_TABLES)


class PartitionError(Exception):
    """A partition cannot be created or attached as asked; the message names it."""


class PartitionState(StrEnum):
    ATTACHED = "attached"
    DETACHED = "detached"  # a table of the partition's name that is attached to nothing


def table_spec(table: str) -> PartitionedTable:
    try:
        return PARTITIONED_TABLES[table]
    except KeyError:
        raise PartitionError(f"{table!r} is not a partitioned table; known: {', '.join(TABLE_NAMES)}") from None


def partition_lock_key(table: str, month: Month) -> tuple[int, int]:
    """The two-int advisory lock key for one month of one table (retention holds it too)."""
    table_key = zlib.crc32(f"autoins.partition.{table}".encode())
    return table_key - (1 << 32) if table_key >= 1 << 31 else table_key, month.index


async def lock_month(conn: asyncpg.Connection, table: str, month: Month) -> None:
    """Transaction-scoped lock serializing create/attach/restore/retire of one month."""
    await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", *partition_lock_key(table, month))


# -- catalog ---------------------------------------------------------------------------------------

_STATE_SQL = """
SELECT c.relkind::text AS relkind, p.relname AS parent
FROM pg_class c
LEFT JOIN pg_inherits i ON i.inhrelid = c.oid
LEFT JOIN pg_class p ON p.oid = i.inhparent
WHERE c.relname = $1 AND c.relnamespace = to_regnamespace(current_schema())
"""

_ATTACHED_SQL = """
SELECT c.relname
FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid
JOIN pg_class p ON p.oid = i.inhparent
WHERE p.relname = $1 AND p.relkind = 'p' AND p.relnamespace = to_regnamespace(current_schema())
"""

_DETACHED_SQL = """
SELECT c.relname
FROM pg_class c
WHERE c.relkind = 'r' AND c.relnamespace = to_regnamespace(current_schema())
  AND starts_with(c.relname, $1 || '_y')
  AND NOT EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.oid)
"""


async def partition_state(conn: asyncpg.Connection, table: str, month: Month) -> PartitionState | None:
    """Whether the month's partition is attached to `table`, exists detached, or does not exist."""
    name = partition_name(table, month)
    row = await conn.fetchrow(_STATE_SQL, name)
    if row is None:
        return None
    if row["relkind"] != "r":
        raise PartitionError(f"{name} exists but is not a plain table (relkind {row['relkind']!r})")
    if row["parent"] is None:
        return PartitionState.DETACHED
    if row["parent"] != table:
        raise PartitionError(f"{name} is a partition of {row['parent']}, not of {table}")
    return PartitionState.ATTACHED


async def attached_months(conn: asyncpg.Connection, table: str) -> dict[Month, str]:
    """Months with a partition attached to `table` (partitions with foreign names are left out)."""
    months: dict[Month, str] = {}
    for row in await conn.fetch(_ATTACHED_SQL, table):
        month = month_of_partition(table, row["relname"])
        if month is not None:
            months[month] = row["relname"]
    return months


async def detached_months(conn: asyncpg.Connection, table: str) -> dict[Month, str]:
    """Tables named like one of `table`'s partitions but attached to nothing (e.g. retention was
    interrupted after DETACH)."""
    months: dict[Month, str] = {}
    for row in await conn.fetch(_DETACHED_SQL, table):
        month = month_of_partition(table, row["relname"])
        if month is not None:
            months[month] = row["relname"]
    return months


# -- create / attach -------------------------------------------------------------------------------


def _bound(instant: datetime) -> str:
    # An explicit UTC offset: a bare '2026-01-01' would be read in the session's TimeZone.
    return "'" + instant.isoformat(sep=" ") + "'"


async def create_or_attach_locked(conn: asyncpg.Connection, table: str, month: Month) -> bool:
    """Make the month's partition exist and be attached. Caller holds `lock_month` in a transaction.

    Returns True when it created or (re)attached a table, False when it was already attached.
    """
    spec = table_spec(table)
    name = partition_name(table, month)
    state = await partition_state(conn, table, month)
    if state is PartitionState.ATTACHED:
        return False
    if state is None:
        await conn.execute(
            f"CREATE TABLE {quote_ident(name)} (LIKE {quote_ident(spec.name)} "
            "INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING GENERATED INCLUDING STORAGE INCLUDING COMPRESSION)"
        )
    try:
        await conn.execute(
            f"ALTER TABLE {quote_ident(spec.name)} ATTACH PARTITION {quote_ident(name)} "
            f"FOR VALUES FROM ({_bound(month.start)}) TO ({_bound(month.end)})"
        )
    except asyncpg.InvalidObjectDefinitionError as error:  # e.g. overlaps a partition named otherwise
        raise PartitionError(f"cannot attach {name} to {table}: {error}") from error
    return True


async def ensure_partitions(conn: asyncpg.Connection, tables: Iterable[str], months: Iterable[Month]) -> list[str]:
    """Create (or re-attach) every missing month of every table; returns the names it created.

    One short transaction per month, so concurrent callers (several persistence actors, the
    maintenance actor, `autoins migrate`) never deadlock and each month is created once.
    """
    wanted = sorted(set(months))
    created: list[str] = []
    for table in tables:
        table_spec(table)
        existing = await attached_months(conn, table)
        for month in wanted:
            if month in existing:
                continue
            if await _ensure_month(conn, table, month):
                created.append(partition_name(table, month))
    return created


async def _ensure_month(conn: asyncpg.Connection, table: str, month: Month) -> bool:
    try:
        async with conn.transaction():
            await lock_month(conn, table, month)
            return await create_or_attach_locked(conn, table, month)
    except asyncpg.DuplicateTableError:
        # Created concurrently by someone who does not take our lock: fine if it is attached now.
        if await partition_state(conn, table, month) is PartitionState.ATTACHED:
            return False
        raise


async def ensure_window(
    conn: asyncpg.Connection,
    now: datetime,
    retention_months: int,
    ahead_months: int,
    tables: Sequence[str] = TABLE_NAMES,
) -> list[str]:
    """Partitions for every month from the retention cutoff to `ahead_months` after `now`."""
    return await ensure_partitions(conn, tables, window_months(now, retention_months, ahead_months))


# -- on demand, for a batch ------------------------------------------------------------------------


class PartitionCache:
    """Months known to have a partition, per table: lets `ensure_for_timestamps` skip the database.

    Not tied to a connection: one per process and database (e.g. per persistence actor), shared by
    all its connections. Months only get added; call `forget` after dropping partitions yourself.
    """

    def __init__(self) -> None:
        self._known: dict[str, set[Month]] = {}

    def missing(self, table: str, months: Iterable[Month]) -> set[Month]:
        known = self._known.get(table, set())
        return {m for m in months if m not in known}

    def remember(self, table: str, months: Iterable[Month]) -> None:
        self._known.setdefault(table, set()).update(months)

    def forget(self, table: str | None = None) -> None:
        if table is None:
            self._known.clear()
        else:
            self._known.pop(table, None)


def months_needed(timestamps: Iterable[datetime] | Iterable[int]) -> set[Month]:
    """UTC months of aware datetimes or of epoch-millisecond ints (a numpy array works too)."""
    tolist = getattr(timestamps, "tolist", None)
    values = tolist() if callable(tolist) else list(timestamps)
    if not values:
        return set()
    if isinstance(values[0], datetime):
        return months_of_instants(values)
    return months_of_epoch_ms(values)


async def ensure_for_timestamps(
    conn: asyncpg.Connection,
    table: str,
    timestamps: Iterable[datetime] | Iterable[int],
    cache: PartitionCache | None = None,
) -> list[str]:
    """Make sure every month a batch touches has a partition; call before inserting the batch.

    With a `cache`, months already known cost no query at all. Old months (years back) and future
    months are created like any other; rejecting timestamps outside retention is validation's job.
    """
    months = months_needed(timestamps)
    if cache is not None:
        months = cache.missing(table, months)
    if not months:
        return []
    created = await ensure_partitions(conn, [table], months)
    if cache is not None:
        cache.remember(table, months)
    return created


# -- listing ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PartitionInfo:
    table: str
    partition: str
    month: Month | None  # None: a partition not named by our convention
    bound: str | None  # PostgreSQL's FOR VALUES text; None when detached
    attached: bool
    row_estimate: int | None  # planner/statistics estimate; None when never analyzed
    size_bytes: int  # heap + indexes + toast


_LIST_SQL = """
SELECT p.relname AS parent, c.relname AS partition, pg_get_expr(c.relpartbound, c.oid) AS bound,
       c.reltuples AS reltuples, s.n_live_tup AS live_tuples, pg_total_relation_size(c.oid) AS size_bytes,
       i.inhrelid IS NOT NULL AS attached
FROM pg_class c
LEFT JOIN pg_inherits i ON i.inhrelid = c.oid
LEFT JOIN pg_class p ON p.oid = i.inhparent
LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
WHERE c.relkind = 'r' AND c.relnamespace = to_regnamespace(current_schema())
  AND (p.relname = $1 OR (i.inhrelid IS NULL AND starts_with(c.relname, $1 || '_y')))
ORDER BY c.relname
"""


async def list_partitions(conn: asyncpg.Connection, tables: Sequence[str] = TABLE_NAMES) -> list[PartitionInfo]:
    """Every partition of the tables, plus detached leftovers named like one; oldest first per table."""
    infos: list[PartitionInfo] = []
    for table in tables:
        for row in await conn.fetch(_LIST_SQL, table):
            month = month_of_partition(table, row["partition"])
            if not row["attached"] and month is None:
                continue
            estimates = [int(v) for v in (row["reltuples"], row["live_tuples"]) if v is not None and v >= 0]
            infos.append(
                PartitionInfo(
                    table=table,
                    partition=row["partition"],
                    month=month,
                    bound=row["bound"],
                    attached=row["attached"],
                    row_estimate=max(estimates) if estimates else None,
                    size_bytes=row["size_bytes"],
                )
            )
    return infos
