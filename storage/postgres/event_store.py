"""PostgresEventStore: one transaction per pipeline batch, and batched activation reads (DESIGN.md §2, §4).

`write_batch` makes a `PersistBatch` durable whole or not at all: raw readings (binary COPY into a temp
staging table, then `INSERT … ON CONFLICT DO NOTHING`), domain events with a compare-and-set of each
stream head, due snapshots (the newest wins), ended trips, and the consumer offsets (monotonic). A batch
retried after it committed (Ray's at-least-once) is a no-op that succeeds. Each event is stored with the
request id of the reading that caused it (`request_ids_by_event`). `load_drivers` activates many
drivers in two queries. The rules shared with the in-memory fake live in `storage.event_store_contract`,
the SQL in `storage.postgres.event_store_sql`; docs/DATABASE.md §5 has the guarantees and measured figures.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import asyncpg
import msgspec
import numpy as np

from domain.batches import NewEvent, PersistBatch, ShardItem, SnapshotRow
from domain.claims import claims_opened
from domain.readings import Reading, ReadingType
from domain.trip_summary import TripSummary
from storage.event_store_contract import (
    DEFAULT_REPLAY_MARGIN_MS,
    ConcurrencyConflict,
    StoredDriver,
    StoredEvent,
    WriteResult,
    events_by_stream,
    highest_offsets,
    new_events_after_head,
    newest_snapshots,
    request_ids_by_event,
    unique_in_order,
    versions_to_verify,
)
from storage.postgres import event_store_sql as sql
from storage.postgres.claims import insert_claims
from storage.postgres.copy_binary import COLUMN_NAMES, encode_readings
from storage.postgres.partitions import PartitionCache, ensure_for_timestamps
from storage.postgres.pool import plain
from storage.postgres.query_timing import query_timings

__all__ = [
    "DEFAULT_REPLAY_MARGIN_MS",
    "ConcurrencyConflict",
    "PostgresEventStore",
    "StoredDriver",
    "StoredEvent",
    "WriteResult",
    "append_events",
]

STAGED_AFTER_DUPLICATE = 8
_DAY_MS = 86_400_000
_NO_PARTITION = "no partition of relation"


class PostgresEventStore:
    """The event store port on PostgreSQL. Cheap to construct (Ray reruns `__init__`); holds no connection.

    `partition_cache`: months known to have partitions (one per process and database); a private one when
    None, so a batch in known months costs no partition query."""

    def __init__(self, pool: asyncpg.Pool, partition_cache: PartitionCache | None = None) -> None:
        self._pool = pool
        self._partitions = partition_cache if partition_cache is not None else PartitionCache()
        self._staged_batches_left = 0

    # -- write -------------------------------------------------------------------------------------

    async def write_batch(self, batch: PersistBatch) -> WriteResult:
        """Store the batch in one transaction; raises ConcurrencyConflict (nothing stored) when a stream
        moved under the writer. Partitions for the batch's months are ensured first, outside it."""
        started = time.perf_counter()
        payload = encode_readings(batch.readings) if len(batch.readings) else None
        encode_s = time.perf_counter() - started
        events = events_by_stream(batch.events)
        async with self._pool.acquire() as conn:
            await self._ensure_partitions(conn, batch)
            try:
                counts = await self._write(conn, batch, payload, events)
            except asyncpg.CheckViolationError as error:
                if _NO_PARTITION not in str(error):
                    raise
                # A month the cache believed in was dropped (retention, a restore): learn again, retry once.
                self._partitions.forget()
                await self._ensure_partitions(conn, batch)
                counts = await self._write(conn, batch, payload, events)
        counts["readings_s"] += encode_s
        return WriteResult(**counts, elapsed_s=time.perf_counter() - started)

    async def _ensure_partitions(self, conn: asyncpg.Connection, batch: PersistBatch) -> None:
        if len(batch.readings):
            # one timestamp per UTC day is enough to name every month touched (months start at midnight)
            days = np.unique(batch.readings.ts_ms // _DAY_MS) * _DAY_MS
            await ensure_for_timestamps(conn, "telematics_events", days, self._partitions)
        occurred = {e.occurred_at_ms // _DAY_MS * _DAY_MS for e in batch.events}
        if occurred:
            await ensure_for_timestamps(conn, "domain_events", sorted(occurred), self._partitions)

    async def _write(
        self,
        conn: asyncpg.Connection,
        batch: PersistBatch,
        payload: bytes | None,
        events: dict[str, list[NewEvent]],
    ) -> dict:
        counts: dict = {}
        async with conn.transaction():
            readings_started = time.perf_counter()
            inserted, counts["readings_staged"] = 0, False
            if payload is not None:
                inserted, counts["readings_staged"] = await self._insert_readings(conn, payload)
            counts["readings_inserted"] = inserted
            counts["readings_duplicate"] = len(batch.readings) - inserted
            counts["readings_s"] = time.perf_counter() - readings_started
            counts["events_inserted"], counts["events_skipped"] = await self._append(
                conn, events, request_ids_by_event(batch)
            )
            snapshots = newest_snapshots(s for out in batch.outputs for s in out.snapshots)
            counts["snapshots_written"] = await self._upsert_snapshots(conn, snapshots)
            counts["trips_inserted"] = await self._insert_trips(conn, [t for out in batch.outputs for t in out.trips])
            counts["claims_opened"] = await insert_claims(conn, claims_opened(batch.events))
            offsets = highest_offsets(batch.offsets)
            if offsets:
                await conn.execute(
                    sql.UPSERT_OFFSETS,
                    batch.consumer_group,
                    [o.topic for o in offsets],
                    [o.partition for o in offsets],
                    [o.next_offset for o in offsets],
                    [o.log_ms for o in offsets],
                )
        return counts

    async def _insert_readings(self, conn: asyncpg.Connection, payload: bytes) -> tuple[int, bool]:
        """COPY the readings in; (rows inserted, whether the staging path was taken).

        Fast path: COPY straight into telematics_events inside a savepoint. A row already stored (a
        retried batch, a device's resend, one reading twice) makes it fail with a unique violation; the
        savepoint is rolled back and the batch goes through the staging table and `INSERT … ON CONFLICT
        DO NOTHING`, which absorbs duplicates. Measured on 10k rows: 40 ms direct vs 66 ms staged
        (speculative insertion costs an extra index probe per row). After a duplicate, the next
        `STAGED_AFTER_DUPLICATE` batches go straight to staging, so a stream of resends pays once.
        """
        if self._staged_batches_left > 0:
            self._staged_batches_left -= 1
        else:
            try:
                async with conn.transaction():  # a savepoint inside the batch transaction
                    started = time.perf_counter()
                    status = await conn.copy_to_table(
                        "telematics_events", source=_chunks(payload), columns=list(COLUMN_NAMES), format="binary"
                    )
                    query_timings().observe("copy", "telematics_events", time.perf_counter() - started)
                return _rowcount(status), False
            except asyncpg.UniqueViolationError:
                self._staged_batches_left = STAGED_AFTER_DUPLICATE
        await conn.execute(sql.CREATE_STAGING)
        started = time.perf_counter()
        await conn.copy_to_table(
            sql.STAGING_TABLE, source=_chunks(payload), columns=list(COLUMN_NAMES), format="binary"
        )
        query_timings().observe("copy", sql.STAGING_TABLE, time.perf_counter() - started)
        return _rowcount(await conn.execute(sql.INSERT_READINGS)), True

    @staticmethod
    async def _append(
        conn: asyncpg.Connection,
        events: dict[str, list[NewEvent]],
        request_ids: Mapping[uuid.UUID, str] | None = None,
    ) -> tuple[int, int]:
        """Lock the heads, skip what a retry already stored, append the rest; (inserted, skipped).
        `request_ids`: event id -> the request id stored with it (`domain_events.request_id`)."""
        if not events:
            return 0, 0
        heads = {r["stream_id"]: r["version"] for r in await conn.fetch(sql.LOCK_STREAMS, list(events))}
        to_verify = [(s, v) for s, evs in events.items() for v in versions_to_verify(evs, heads[s])]
        stored: dict[str, dict[int, uuid.UUID]] = {s: {} for s in events}
        if to_verify:
            rows = await conn.fetch(sql.STORED_VERSIONS, [s for s, _ in to_verify], [v for _, v in to_verify])
            for row in rows:
                stored[row["stream_id"]][row["stream_version"]] = plain(row["event_id"])
        fresh: list[NewEvent] = []
        moved: list[tuple[str, int, int]] = []
        for stream_id, stream_events in events.items():
            new = new_events_after_head(stream_id, stream_events, heads[stream_id], stored[stream_id])
            if new:
                fresh.extend(new)
                moved.append((stream_id, new[-1].stream_version, heads[stream_id]))
        skipped = sum(len(evs) for evs in events.values()) - len(fresh)
        if not fresh:
            return 0, skipped
        caused_by = request_ids or {}
        row = await conn.fetchrow(
            sql.APPEND_EVENTS,
            [e.event_id for e in fresh],
            [e.stream_id for e in fresh],
            [e.stream_version for e in fresh],
            [e.event_type for e in fresh],
            [e.payload_json for e in fresh],
            [e.occurred_at_ms for e in fresh],
            [m[0] for m in moved],
            [m[1] for m in moved],
            [m[2] for m in moved],
            [caused_by.get(e.event_id) for e in fresh],
        )
        if row["heads"] != len(moved):  # impossible while we hold the row locks; never write a forked log
            raise RuntimeError(f"stream heads moved while locked: {row['heads']} of {len(moved)} updated")
        return row["events"], skipped

    async def _upsert_snapshots(self, conn: asyncpg.Connection, snapshots: list[SnapshotRow]) -> int:
        if not snapshots:
            return 0
        status = await conn.execute(
            sql.UPSERT_SNAPSHOTS,
            [s.driver_id for s in snapshots],
            [s.stream_version for s in snapshots],
            [s.state for s in snapshots],
            [s.state_format for s in snapshots],
            [s.last_ts_ms for s in snapshots],
            [s.source_partition for s in snapshots],
            [s.source_offset for s in snapshots],
            [s.open for s in snapshots],
        )
        return _rowcount(status)

    async def _insert_trips(self, conn: asyncpg.Connection, trips: list) -> int:
        return await insert_trips(conn, trips)

    # -- read --------------------------------------------------------------------------------------

    async def load_drivers(
        self, driver_ids: Sequence[str], replay_margin_ms: int = DEFAULT_REPLAY_MARGIN_MS
    ) -> dict[str, StoredDriver]:
        """Activation data for every id, in two queries whatever their number (see `StoredDriver`).

        Readings are those stored after the snapshot (`source_offset` greater; all when there is none),
        not older than `snapshot.last_ts_ms - replay_margin_ms`, in offset order, as `ShardItem`s."""
        ids = unique_in_order(driver_ids)
        if not ids:
            return {}
        async with self._pool.acquire() as conn:
            heads = await conn.fetch(sql.LOAD_DRIVERS, ids)
            snapshots = {r["driver_id"]: _snapshot(r) for r in heads}
            from_ms = [None if (s := snapshots[d]) is None else s.last_ts_ms - replay_margin_ms for d in ids]
            after = [None if (s := snapshots[d]) is None else s.source_offset for d in ids]
            rows = await conn.fetch(sql.LOAD_READINGS, ids, from_ms, after)
        readings: dict[str, list[ShardItem]] = {d: [] for d in ids}
        for r in rows:
            readings[r["driver_id"]].append(_shard_item(r))
        rows_by_id = {r["driver_id"]: r for r in heads}
        out = {}
        for d in ids:  # in the order asked
            snapshot = snapshots[d]
            out[d] = StoredDriver(
                driver_id=d,
                timezone=rows_by_id[d]["timezone"],
                snapshot=snapshot,
                readings=readings[d],
                stream_version=0 if snapshot is None else snapshot.stream_version,
                stream_head=rows_by_id[d]["stream_head"],
            )
        return out

    async def stored_offsets(self, consumer_group: str, topic: str) -> dict[int, int]:
        """partition -> next offset to consume (the first offset not yet stored)."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(sql.STORED_OFFSETS, consumer_group, topic)
        return {r["partition"]: r["next_offset"] for r in rows}

    async def stored_log_times(self, consumer_group: str, topic: str) -> dict[int, int]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(sql.STORED_LOG_TIMES, consumer_group, topic)
        return {r["partition"]: r["watermark_ms"] for r in rows}

    async def open_drivers(self) -> list[str]:
        async with self._pool.acquire() as conn:
            return [r["driver_id"] for r in await conn.fetch(sql.OPEN_DRIVERS)]

    async def stream_head(self, stream_id: str) -> int:
        """The stream's version (its last event's), 0 when it has none."""
        async with self._pool.acquire() as conn:
            return await conn.fetchval(sql.STREAM_HEAD, stream_id) or 0

    async def read_stream(self, stream_id: str) -> list[StoredEvent]:
        """Every event of a stream in version order (tests, diagnostics; not a hot path)."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(sql.READ_STREAM, stream_id)
        return [
            StoredEvent(
                event_id=plain(r["event_id"]),
                stream_id=r["stream_id"],
                stream_version=r["stream_version"],
                event_type=r["event_type"],
                occurred_at_ms=r["occurred_at_ms"],
                payload=msgspec.json.decode(r["payload"]),
                request_id=r["request_id"],
            )
            for r in rows
        ]


async def _chunks(payload: bytes) -> AsyncIterator[bytes]:
    # copy_to_table(source=bytes) would take the bytes for a file path (PERF_NOTES.md, gotchas)
    yield payload


def _rowcount(status: str) -> int:
    """The row count of a command tag: 'INSERT 0 42' -> 42, 'COPY 7' -> 7."""
    return int(status.rsplit(" ", 1)[1])


def _snapshot(r: asyncpg.Record) -> SnapshotRow | None:
    if r["stream_version"] is None or r["source_offset"] is None or r["last_ts_ms"] is None:
        return None  # none, or written before positions were stored: replay everything instead
    return SnapshotRow(
        driver_id=r["driver_id"],
        stream_version=r["stream_version"],
        state=r["state"],
        state_format=r["state_format"],
        last_ts_ms=r["last_ts_ms"],
        source_partition=r["source_partition"],
        source_offset=r["source_offset"],
        open=r["open"],
    )


def _shard_item(r: asyncpg.Record) -> ShardItem:
    reading = Reading(
        event_id=plain(r["event_id"]),
        driver_id=r["driver_id"],
        ts_ms=r["ts_ms"],
        type=ReadingType(r["event_type"]),
        lat=r["lat"],
        lon=r["lon"],
        speed_kmh=r["speed_kmh"],
        accel_ms2=r["accel_ms2"],
        heading=r["heading"],
        speed_limit_kmh=r["speed_limit_kmh"],
        lateral_accel_ms2=r["lateral_accel_ms2"],
        data=None if r["data"] is None else msgspec.json.decode(r["data"]),
    )
    partition, offset = r["source_partition"], r["source_offset"]
    return ShardItem(reading, -1 if partition is None else partition, -1 if offset is None else offset,
                     r["source_watermark_ms"])


async def append_events(conn: asyncpg.Connection, events: Sequence[NewEvent]) -> tuple[int, int]:
    """The store's append for another writer of streams (the scorer's risk streams), inside the caller's
    transaction: heads locked, events a retry already stored skipped, the rest appended with a compare-and-set
    of each head. Returns (inserted, skipped); raises ConcurrencyConflict when the versions do not continue."""
    return await PostgresEventStore._append(conn, events_by_stream(events))


async def insert_trips(conn: asyncpg.Connection, trips: Sequence[TripSummary]) -> int:
    """Insert trip rows (one statement); a trip already stored is left alone. Returns how many were new."""
    if not trips:
        return 0
    columns = [[_trip_value(t, name) for t in trips] for name, _ in sql.TRIP_COLUMNS]
    return _rowcount(await conn.execute(sql.INSERT_TRIPS, *columns))


def _trip_value(trip: TripSummary, name: str) -> Any:
    value = getattr(trip, name)
    return ",".join(value) if name == "quality_flags" else value


def trip_summary_of(row: asyncpg.Record) -> TripSummary:
    """A `trips` row (selected as TRIP_COLUMNS, times as ms) as the TripSummary it was stored from."""
    fields = {name: plain(row[name]) for name, _ in sql.TRIP_COLUMNS}
    fields["quality_flags"] = tuple(fields["quality_flags"] or ())
    return TripSummary(**fields)
