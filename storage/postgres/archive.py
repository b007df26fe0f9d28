"""Retention (detach → archive → verify → drop) and restore of monthly partitions (plan §1.1).

Archive format (docs/DATABASE.md, files in storage/files/archive_files.py): `<archive_dir>/<table>/
<partition>.csv.gz` — `COPY (SELECT … ORDER BY primary key) TO STDOUT (FORMAT csv, HEADER)` in
UTC/ISO, gzip with mtime 0 (so the same rows give the same bytes) — next to
`<partition>.manifest.json` (table, month range, columns, row count, sha256 of the .csv.gz,
created_at).

Crash safety: every step is re-entrant. A partition detached by an interrupted run is found by name
(a table called like a partition that is attached to nothing) and finished by the next run; files
are written to a temporary name, fsynced and renamed; DROP happens only after the archive is in
place and its row count matches the table's.
"""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import asyncpg

from domain.partition_calendar import Month, months_to_retire, partition_name, retention_cutoff
from storage.files.archive_files import (
    ARCHIVE_FORMAT,
    ArchivedPartition,
    ArchiveError,
    GzipWriter,
    Manifest,
    archive_paths,
    place_archive,
    read_manifest,
    scan_archive,
    sha256_file,
)
from storage.postgres.partitions import (
    TABLE_NAMES,
    PartitionError,
    PartitionState,
    attached_months,
    create_or_attach_locked,
    detached_months,
    lock_month,
    partition_lock_key,
    partition_state,
    table_spec,
)
from storage.postgres.pool import quote_ident

__all__ = [
    "ARCHIVE_FORMAT",
    "RETENTION_LOCK_KEY",
    "ArchiveError",
    "ArchivedPartition",
    "Manifest",
    "RetentionReport",
    "Retirement",
    "SkippedPartition",
    "archive_paths",
    "export_partition",
    "plan_retention",
    "read_manifest",
    "restore",
    "retain",
    "table_columns",
]

# pg_advisory_lock(bigint) key held for a whole retention run: the bytes "autoinsr".
RETENTION_LOCK_KEY = int.from_bytes(b"autoinsr", "big")
_DETACH_LOCK_TIMEOUT_MS = 3000
_DETACH_ATTEMPTS = 5

# Session settings that make COPY text portable and deterministic (restore sets the same).
_PORTABLE_TEXT = (
    "SET LOCAL statement_timeout = 0",
    "SET LOCAL timezone = 'UTC'",
    "SET LOCAL datestyle = 'ISO, YMD'",
    "SET LOCAL extra_float_digits = 1",  # shortest text that round-trips exactly (PG >= 12)
)


@dataclass(frozen=True, slots=True)
class SkippedPartition:
    table: str
    partition: str
    reason: str


@dataclass(frozen=True, slots=True)
class Retirement:
    """One partition retention will retire; `attached=False` finishes an interrupted run."""

    table: str
    partition: str
    month: Month
    attached: bool


@dataclass(frozen=True, slots=True)
class RetentionReport:
    cutoff: Month  # oldest month kept
    archived: tuple[ArchivedPartition, ...]
    skipped: tuple[SkippedPartition, ...]

    @property
    def dropped(self) -> tuple[str, ...]:
        return tuple(a.partition for a in self.archived)


StepCallback = Callable[[Retirement, str], None]  # step: "detached" | "archived" | "dropped"


# -- retention -------------------------------------------------------------------------------------


async def plan_retention(
    conn: asyncpg.Connection, now: datetime, retention_months: int, tables: Sequence[str] = TABLE_NAMES
) -> list[Retirement]:
    """What `retain` would do now, oldest first; reads the catalog only."""
    plan: list[Retirement] = []
    for table in tables:
        attached = await attached_months(conn, table)
        detached = await detached_months(conn, table)
        for month in months_to_retire([*attached, *detached], now, retention_months):
            is_attached = month in attached
            name = attached[month] if is_attached else detached[month]
            plan.append(Retirement(table, name, month, is_attached))
    return plan


async def retain(
    conn: asyncpg.Connection,
    now: datetime,
    retention_months: int,
    archive_dir: Path,
    *,
    tables: Sequence[str] = TABLE_NAMES,
    on_step: StepCallback | None = None,
) -> RetentionReport:
    """Detach, archive, verify and drop every partition older than the retention cutoff.

    Months at or after `retention_cutoff(now, retention_months)` are never touched (so neither is
    the current month). Rerunning is a no-op; a run interrupted at any step is completed by the next.
    One run at a time per database: a second concurrent run fails at once with ArchiveError.
    Call outside a transaction.
    """
    cutoff = retention_cutoff(now, retention_months)
    archived: list[ArchivedPartition] = []
    skipped: list[SkippedPartition] = []
    if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", RETENTION_LOCK_KEY):
        raise ArchiveError("another retention run is in progress on this database; try again when it has finished")
    try:
        for table in tables:
            for month, name in sorted((await detached_months(conn, table)).items()):
                if month >= cutoff:
                    skipped.append(
                        SkippedPartition(
                            table,
                            name,
                            "detached but inside the retention window: `autoins partitions ensure` re-attaches it",
                        )
                    )
        for item in await plan_retention(conn, now, retention_months, tables):
            result = await _retire(conn, item, archive_dir, on_step or _ignore_step)
            if isinstance(result, SkippedPartition):
                skipped.append(result)
            else:
                archived.append(result)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", RETENTION_LOCK_KEY)
    return RetentionReport(cutoff, tuple(archived), tuple(skipped))


def _ignore_step(_item: Retirement, _step: str) -> None:
    return None


async def _retire(
    conn: asyncpg.Connection, item: Retirement, archive_dir: Path, on_step: StepCallback
) -> ArchivedPartition | SkippedPartition:
    # Held across detach, export and drop: create/attach/restore of this month wait for us.
    key = partition_lock_key(item.table, item.month)
    await conn.execute("SELECT pg_advisory_lock($1, $2)", *key)
    try:
        if await partition_state(conn, item.table, item.month) is None:
            return SkippedPartition(item.table, item.partition, "vanished before it could be detached")
        await _detach(conn, item)
        on_step(item, "detached")
        result = await export_partition(conn, item.table, item.month, archive_dir)
        on_step(item, "archived")
        async with conn.transaction():
            await conn.execute("SET LOCAL statement_timeout = 0")  # count(*) of a big month
            if await partition_state(conn, item.table, item.month) is not PartitionState.DETACHED:
                raise ArchiveError(f"{item.partition} was re-attached while being archived; not dropped")
            rows = await conn.fetchval(f"SELECT count(*) FROM {quote_ident(item.partition)}")
            if rows != result.rows:
                raise ArchiveError(f"{item.partition} has {rows} rows but its archive has {result.rows}; not dropped")
            await conn.execute(f"DROP TABLE {quote_ident(item.partition)}")
        on_step(item, "dropped")
        return result
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1, $2)", *key)


async def _detach(conn: asyncpg.Connection, item: Retirement) -> None:
    # DETACH needs ACCESS EXCLUSIVE on the parent, and while it waits every new insert queues
    # behind it: wait briefly, give way, retry, rather than stall the pipeline behind a long query.
    for attempt in range(_DETACH_ATTEMPTS):
        try:
            async with conn.transaction():
                await conn.execute(f"SET LOCAL lock_timeout = '{_DETACH_LOCK_TIMEOUT_MS}ms'")
                if await partition_state(conn, item.table, item.month) is PartitionState.ATTACHED:
                    await conn.execute(
                        f"ALTER TABLE {quote_ident(item.table)} DETACH PARTITION {quote_ident(item.partition)}"
                    )
            return
        except asyncpg.LockNotAvailableError:
            if attempt + 1 == _DETACH_ATTEMPTS:
                raise ArchiveError(
                    f"cannot detach {item.partition}: {item.table} stayed busy (a long transaction holds it); "
                    "try again later"
                ) from None
            await asyncio.sleep(1.0)


async def export_partition(conn: asyncpg.Connection, table: str, month: Month, archive_dir: Path) -> ArchivedPartition:
    """Write (or find an identical) verified archive of one partition; the partition is untouched."""
    spec = table_spec(table)
    name = partition_name(table, month)
    directory = archive_dir / table
    await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
    columns = await table_columns(conn, name)  # the partition's own: it may be a detached leftover
    if not columns:
        raise ArchiveError(f"{name} does not exist")
    names = ", ".join(quote_ident(c) for c, _ in columns)
    order = ", ".join(quote_ident(c) for c in spec.primary_key)
    tmp = directory / f".{name}.csv.gz.tmp"
    writer = await asyncio.to_thread(GzipWriter, tmp)
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            for statement in _PORTABLE_TEXT:
                await conn.execute(statement)
            expected = await conn.fetchval(f"SELECT count(*) FROM {quote_ident(name)}")
            status = await conn.copy_from_query(
                f"SELECT {names} FROM {quote_ident(name)} ORDER BY {order}", output=writer, format="csv", header=True
            )
        await asyncio.to_thread(writer.finish)
        copied = int(status.split()[-1])
        counted, header, sha256, size = await asyncio.to_thread(scan_archive, tmp)
        if header != [c for c, _ in columns] or not expected == copied == counted:
            raise ArchiveError(
                f"{name}: archive verification failed (table {expected} rows, copied {copied}, file {counted})"
            )
        return await asyncio.to_thread(
            place_archive, tmp, directory, table, name, month, columns, counted, sha256, size
        )
    finally:
        await asyncio.to_thread(writer.discard)


async def table_columns(conn: asyncpg.Connection, table: str) -> list[tuple[str, str]]:
    """(name, SQL type) of a table's live columns in order."""
    rows = await conn.fetch(
        """
        SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type
        FROM pg_attribute a
        WHERE a.attrelid = to_regclass(quote_ident($1)) AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY a.attnum
        """,
        table,
    )
    return [(row["attname"], row["type"]) for row in rows]


# -- restore ---------------------------------------------------------------------------------------


async def restore(conn: asyncpg.Connection, archive_file: Path) -> int:
    """Load an archive back; returns the rows inserted (0 when they are all there already).

    Recreates and attaches the month's partition if needed, whatever its age (retention will retire
    it again on its next run unless retention_months is raised). Checks the file's sha256 and row
    count against the manifest; loads through a staging table with ON CONFLICT DO NOTHING, so
    restoring twice adds nothing. Call outside a transaction.
    """
    data_file, manifest_file = archive_paths(archive_file)
    manifest = read_manifest(manifest_file)
    try:
        spec = table_spec(manifest.table)
    except PartitionError as error:
        raise ArchiveError(f"{manifest_file}: {error}") from None
    if partition_name(spec.name, manifest.month) != manifest.partition:
        raise ArchiveError(f"{manifest_file}: partition {manifest.partition} does not match month {manifest.month}")
    if not data_file.is_file():
        raise ArchiveError(f"{data_file}: archive file not found")
    sha256, size = await asyncio.to_thread(sha256_file, data_file)
    if sha256 != manifest.sha256 or size != manifest.size_bytes:
        raise ArchiveError(f"{data_file}: checksum mismatch with {manifest_file.name}; the archive is damaged")
    known = {name for name, _ in await table_columns(conn, spec.name)}
    names = [name for name, _ in manifest.columns]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ArchiveError(f"{data_file}: columns {', '.join(unknown)} no longer exist in {spec.name}")
    column_list = ", ".join(quote_ident(n) for n in names)
    stage = "autoins_restore_stage"
    async with conn.transaction():
        for statement in _PORTABLE_TEXT:
            await conn.execute(statement)
        await lock_month(conn, spec.name, manifest.month)
        await create_or_attach_locked(conn, spec.name, manifest.month)
        await conn.execute(
            f"CREATE TEMP TABLE {stage} (LIKE {quote_ident(spec.name)} INCLUDING DEFAULTS) ON COMMIT DROP"
        )
        source = await asyncio.to_thread(gzip.open, data_file, "rb")
        try:
            await conn.copy_to_table(stage, source=source, columns=names, format="csv", header="match")
        finally:
            await asyncio.to_thread(source.close)
        staged = await conn.fetchval(f"SELECT count(*) FROM {stage}")
        if staged != manifest.row_count:
            raise ArchiveError(f"{data_file}: holds {staged} rows, manifest says {manifest.row_count}")
        status = await conn.execute(
            f"INSERT INTO {quote_ident(manifest.partition)} ({column_list}) "
            f"SELECT {column_list} FROM {stage} ON CONFLICT DO NOTHING"
        )
    return int(status.split()[-1])
