"""Builders of event store inputs for tests: readings as ShardItems, events, snapshots, trips, batches.

Pure (no I/O); ids are random per call, so build a list once to write it twice.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping

import msgspec
import numpy as np

from domain.batches import (
    NewEvent,
    PartitionOffset,
    PersistBatch,
    ReadingColumns,
    ShardItem,
    ShardOutput,
    SnapshotRow,
    empty_reading_columns,
)
from domain.readings import Reading, ReadingType
from domain.trip_summary import TripSummary

T0_MS = 1_780_000_000_000  # 2026-05-28T20:26:40Z: a fixed device time (its month is created on demand if needed)
TOPIC = "telematics.events"


def time_ordered_id(ts_ms: int) -> uuid.UUID:
    """uuid7-like: device time in the high bits (index inserts stay local, as in production)."""
    return uuid.UUID(int=(ts_ms << 80) | secrets.randbits(80))


def items(driver_id: str, offsets, partition: int = 0, ts_of=lambda o: T0_MS + o * 1000, **fields) -> list[ShardItem]:
    out = []
    for offset in offsets:
        ts = ts_of(offset)
        reading = Reading(
            event_id=time_ordered_id(ts),
            driver_id=driver_id,
            ts_ms=ts,
            type=ReadingType.POSITION,
            lat=52.5 + offset * 1e-5,
            lon=13.4 - offset * 1e-5,
            speed_kmh=float(30 + offset % 50),
            accel_ms2=0.25,
            heading=float(offset % 360),
            speed_limit_kmh=fields.get("speed_limit_kmh", 50.0),
            lateral_accel_ms2=fields.get("lateral_accel_ms2"),
            data=fields.get("data"),
        )
        out.append(ShardItem(reading, partition, offset))
    return out


def columns(shard_items: list[ShardItem]) -> ReadingColumns:
    if not shard_items:
        return empty_reading_columns()
    return ReadingColumns.from_readings(
        [i.reading for i in shard_items], [i.partition for i in shard_items], [i.offset for i in shard_items],
        [i.reading.ts_ms if i.arrived_ms is None else i.arrived_ms for i in shard_items],
    )


def as_stored(shard_items: list[ShardItem]) -> list[ShardItem]:
    """What a store hands back: `real` columns rounded to float32."""
    readings = columns(shard_items).to_readings()
    return [ShardItem(r, i.partition, i.offset, r.ts_ms if i.arrived_ms is None else i.arrived_ms)
            for r, i in zip(readings, shard_items, strict=True)]


def event(
    stream_id: str,
    version: int,
    event_id: uuid.UUID | None = None,
    occurred_at_ms: int = T0_MS,
    seq: int | None = None,
) -> NewEvent:
    """`seq`: the offset of the reading that caused it (the version when not given)."""
    eid = event_id or uuid.uuid4()
    payload = msgspec.json.encode({"type": "trip_started", "event_id": str(eid), "version": version})
    return NewEvent(eid, stream_id, version, "trip_started", occurred_at_ms, payload, version if seq is None else seq)


def snapshot(driver_id: str, offset: int, version: int, last_ts_ms: int, partition: int = 0) -> SnapshotRow:
    return SnapshotRow(driver_id, version, f"state@{offset}".encode(), 1, last_ts_ms, partition, offset)


def trip(driver_id: str, start_ms: int = T0_MS) -> TripSummary:
    return TripSummary(
        trip_id=uuid.uuid4(),
        driver_id=driver_id,
        start_ms=start_ms,
        end_ms=start_ms + 600_000,
        distance_m=5_000.0,
        duration_s=600.0,
        avg_speed_kmh=30.0,
        max_speed_kmh=72.5,
        harsh_braking_count=2,
        night_s=12.5,
        end_reason="parked",
        harsh_braking_low_count=3,
        harsh_braking_high_count=1,
    )


def batch(
    group: str,
    readings: list[ShardItem] = (),
    events: list[NewEvent] = (),
    snapshots: list[SnapshotRow] = (),
    trips: list[TripSummary] = (),
    offsets: dict[int, int] | None = None,
    request_ids: Mapping[tuple[int, int], str] | None = None,
) -> PersistBatch:
    """`request_ids`: (partition, offset) of a reading -> the x-request-id it arrived with."""
    output = ShardOutput(shard=0, events=list(events), snapshots=list(snapshots), trips=list(trips))
    extra = {}
    if request_ids:
        ids = tuple(sorted(set(request_ids.values())))
        position = [request_ids.get((i.partition, i.offset)) for i in readings]
        extra = {
            "request_ids": ids,
            "request_id_index": np.array([-1 if r is None else ids.index(r) for r in position], dtype=np.int32),
        }
    return PersistBatch(
        consumer_group=group,
        readings=columns(list(readings)),
        offsets=tuple(PartitionOffset(TOPIC, p, o) for p, o in (offsets or {}).items()),
        outputs=(output,),
        **extra,
    )
