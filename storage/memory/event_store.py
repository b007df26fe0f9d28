"""InMemoryEventStore: the event store port in plain dicts, for fast tests of the actors' logic (STYLE.md habit 6).

Same methods and semantics as `PostgresEventStore` — the contract tests run against both: readings stored
once per (event_id, ts), stream heads compare-and-set with retries skipped, newest snapshot kept, trips
inserted once, a crash's claim opened once,
offsets monotonic, activation data after the snapshot in offset order. A batch is checked
completely before anything is changed, and no `await` separates the check from the change, so a
conflicting batch leaves no trace, like a rolled-back transaction. Floats of `real` columns come back
rounded to float32, as from PostgreSQL.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence

import msgspec

from domain.batches import NewEvent, PersistBatch, ShardItem, SnapshotRow
from domain.claims import ClaimOpening, claims_opened
from domain.trip_summary import TripSummary
from storage.event_store_contract import (
    DEFAULT_REPLAY_MARGIN_MS,
    StoredDriver,
    StoredEvent,
    WriteResult,
    events_by_stream,
    highest_offsets,
    new_events_after_head,
    newest_snapshots,
    request_ids_by_event,
    snapshot_is_newer,
    unique_in_order,
    versions_to_verify,
)


class InMemoryEventStore:
    """Everything in dicts; `timezones` plays the `drivers` table (tests set it directly)."""

    def __init__(self) -> None:
        self.readings: dict[str, dict[tuple[bytes, int], ShardItem]] = {}  # driver -> (event_id, ts_ms) -> item
        self.streams: dict[str, list[NewEvent]] = {}  # stream -> events, index = version - 1
        self.snapshots: dict[str, SnapshotRow] = {}
        self.trips: dict[uuid.UUID, TripSummary] = {}
        self.claims: dict[uuid.UUID, ClaimOpening] = {}  # the `claims` table's crash-derived part (opened once)
        self.offsets: dict[tuple[str, str, int], int] = {}
        self.log_times: dict[tuple[str, str, int], int] = {}
        self.timezones: dict[str, str] = {}
        self.request_ids: dict[uuid.UUID, str] = {}  # event id -> request id (domain_events.request_id)

    async def write_batch(self, batch: PersistBatch) -> WriteResult:
        started = time.perf_counter()
        # 1. decide everything (may raise ConcurrencyConflict) ...
        appends, skipped = self._fresh(batch.events)
        items = _items(batch)
        # 2. ... then change everything, without yielding to the event loop in between
        inserted = 0
        for item in items:
            stored_readings = self.readings.setdefault(item.reading.driver_id, {})
            key = (item.reading.event_id.bytes, item.reading.ts_ms)
            if key not in stored_readings:
                stored_readings[key] = item
                inserted += 1
        readings_s = time.perf_counter() - started
        caused_by = request_ids_by_event(batch)
        for event in appends:
            self.streams.setdefault(event.stream_id, []).append(event)
            if event.event_id in caused_by:
                self.request_ids[event.event_id] = caused_by[event.event_id]
        written = 0
        for snap in newest_snapshots(s for out in batch.outputs for s in out.snapshots):
            old = self.snapshots.get(snap.driver_id)
            if old is None or snapshot_is_newer(snap, old):
                self.snapshots[snap.driver_id] = snap
                written += 1
        trips = 0
        for out in batch.outputs:
            for trip in out.trips:
                if trip.trip_id not in self.trips:
                    self.trips[trip.trip_id] = trip
                    trips += 1
        claims = 0
        for opening in claims_opened(batch.events):
            if opening.claim_id not in self.claims:
                self.claims[opening.claim_id] = opening
                claims += 1
        for o in highest_offsets(batch.offsets):
            key = (batch.consumer_group, o.topic, o.partition)
            if o.next_offset > self.offsets.get(key, -1):
                self.offsets[key] = o.next_offset
                if o.log_ms is not None:
                    self.log_times[key] = max(self.log_times.get(key, o.log_ms), o.log_ms)
        return WriteResult(
            readings_inserted=inserted,
            readings_duplicate=len(items) - inserted,
            events_inserted=len(appends),
            events_skipped=skipped,
            snapshots_written=written,
            trips_inserted=trips,
            claims_opened=claims,
            elapsed_s=time.perf_counter() - started,
            readings_s=readings_s,
        )

    def append(self, events: Sequence[NewEvent]) -> tuple[int, int]:
        """The append alone, for another writer of streams (the scorer's fake store), atomic like a
        transaction: checked whole, then applied without yielding. Returns (inserted, skipped)."""
        appends, skipped = self._fresh(events)
        for event in appends:
            self.streams.setdefault(event.stream_id, []).append(event)
        return len(appends), skipped

    def _fresh(self, events: Sequence[NewEvent]) -> tuple[list[NewEvent], int]:
        appends: list[NewEvent] = []
        skipped = 0
        for stream_id, stream_events in events_by_stream(events).items():
            log = self.streams.get(stream_id, [])
            stored = {
                v: log[v - 1].event_id for v in versions_to_verify(stream_events, len(log)) if 1 <= v <= len(log)
            }
            fresh = new_events_after_head(stream_id, stream_events, len(log), stored)
            appends.extend(fresh)
            skipped += len(stream_events) - len(fresh)
        return appends, skipped

    async def load_drivers(
        self, driver_ids: Sequence[str], replay_margin_ms: int = DEFAULT_REPLAY_MARGIN_MS
    ) -> dict[str, StoredDriver]:
        out = {}
        for driver_id in unique_in_order(driver_ids):
            snapshot = self.snapshots.get(driver_id)
            items = self.readings.get(driver_id, {}).values()
            if snapshot is not None:
                from_ms = snapshot.last_ts_ms - replay_margin_ms
                items = [i for i in items if i.offset > snapshot.source_offset and i.reading.ts_ms >= from_ms]
            out[driver_id] = StoredDriver(
                driver_id=driver_id,
                timezone=self.timezones.get(driver_id, "UTC"),
                snapshot=snapshot,
                readings=sorted(items, key=lambda i: (i.offset, i.reading.ts_ms, i.reading.event_id.bytes)),
                stream_version=0 if snapshot is None else snapshot.stream_version,
                stream_head=len(self.streams.get(driver_id, [])),
            )
        return out

    async def stored_offsets(self, consumer_group: str, topic: str) -> dict[int, int]:
        return {p: o for (g, t, p), o in self.offsets.items() if g == consumer_group and t == topic}

    async def stored_log_times(self, consumer_group: str, topic: str) -> dict[int, int]:
        return {p: ms for (g, t, p), ms in self.log_times.items() if g == consumer_group and t == topic}

    async def open_drivers(self) -> list[str]:
        return sorted(d for d, snap in self.snapshots.items() if snap.open)

    async def stream_head(self, stream_id: str) -> int:
        return len(self.streams.get(stream_id, []))

    async def read_stream(self, stream_id: str) -> list[StoredEvent]:
        return [
            StoredEvent(
                event_id=e.event_id,
                stream_id=e.stream_id,
                stream_version=e.stream_version,
                event_type=e.event_type,
                occurred_at_ms=e.occurred_at_ms,
                payload=msgspec.json.decode(e.payload_json),
                request_id=self.request_ids.get(e.event_id),
            )
            for e in self.streams.get(stream_id, [])
        ]


def _items(batch: PersistBatch) -> list[ShardItem]:
    columns = batch.readings
    if not len(columns):
        return []
    partitions = columns.source_partition.tolist()
    offsets = columns.source_offset.tolist()
    arrived = columns.source_watermark_ms.tolist()
    return [ShardItem(r, partitions[i], offsets[i], arrived[i]) for i, r in enumerate(columns.to_readings())]
