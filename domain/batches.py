"""What crosses actor boundaries in the pipeline: columns, not lists of dicts (PERF_NOTES.md).

Pure data and conversions, no I/O. A polled Kafka batch becomes:
- `ReadingColumns`: the validated readings as numpy columns plus their Kafka positions — what the
  persistence actor COPYs into `telematics_events` without a per-row Python loop;
- per shard, a msgpack blob of `ShardItem`s (readings with their positions, in Kafka order);
- from each shard, a `ShardOutput`: new domain events with stream versions, due snapshots, ended
  trips and the live position per driver;
- `PersistBatch`: all of it plus the offsets to record, written in one transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import msgspec
import numpy as np

from domain.readings import Reading, ReadingType
from domain.trip_summary import TripSummary

READING_TYPES: tuple[ReadingType, ...] = tuple(ReadingType)
_TYPE_CODE = {t: i for i, t in enumerate(READING_TYPES)}


@dataclass(frozen=True, slots=True)
class ReadingColumns:
    """Validated readings as columns (Ray ships numpy arrays without copying them element-wise).

    `driver_id` is ASCII bytes (validation allows only [A-Za-z0-9_.-]); the optional reals (speed,
    acceleration, heading when unknown; `speed_limit_kmh`, `lateral_accel_ms2`) use NaN for NULL; `data_json`
    holds the optional `data` object per row as JSON bytes (None for none, the usual case).
    `source_partition/offset` are the Kafka position, `source_watermark_ms` the partition's log time when the
    reading arrived (`domain.log_time`): what the silence rule measures, kept so a replay measures the same.
    """

    event_id: np.ndarray  # (n, 16) uint8: UUID bytes
    driver_id: np.ndarray  # (n,) S64
    ts_ms: np.ndarray  # int64
    type_code: np.ndarray  # uint8 index into READING_TYPES
    lat: np.ndarray  # float64, NaN = NULL (positions stripped: a mileage_only driver, docs/PRIVACY.md §3)
    lon: np.ndarray  # float64, NaN = NULL
    speed_kmh: np.ndarray  # float32, NaN = NULL (unknown)
    accel_ms2: np.ndarray  # float32, NaN = NULL (unknown)
    heading: np.ndarray  # float32, NaN = NULL (unknown)
    speed_limit_kmh: np.ndarray  # float32, NaN = NULL
    lateral_accel_ms2: np.ndarray  # float32, NaN = NULL
    source_partition: np.ndarray  # int32
    source_offset: np.ndarray  # int64
    source_watermark_ms: np.ndarray  # int64
    data_json: tuple[bytes | None, ...] = ()

    def __len__(self) -> int:
        return int(self.ts_ms.shape[0])

    @classmethod
    def from_readings(
        cls, readings: Sequence[Reading], partitions: Sequence[int], offsets: Sequence[int],
        watermarks: Sequence[int] | None = None,
    ) -> ReadingColumns:
        """`watermarks`: each reading's log time on arrival; None = its own device time (tools, tests)."""
        n = len(readings)
        nan = float("nan")
        has_data = any(r.data is not None for r in readings)
        return cls(
            event_id=np.frombuffer(b"".join(r.event_id.bytes for r in readings), dtype=np.uint8).reshape(n, 16),
            driver_id=np.array([r.driver_id.encode() for r in readings], dtype="S64"),
            ts_ms=np.fromiter((r.ts_ms for r in readings), np.int64, n),
            type_code=np.fromiter((_TYPE_CODE[r.type] for r in readings), np.uint8, n),
            lat=np.fromiter((nan if r.lat is None else r.lat for r in readings), np.float64, n),
            lon=np.fromiter((nan if r.lon is None else r.lon for r in readings), np.float64, n),
            speed_kmh=np.fromiter((nan if r.speed_kmh is None else r.speed_kmh for r in readings), np.float32, n),
            accel_ms2=np.fromiter((nan if r.accel_ms2 is None else r.accel_ms2 for r in readings), np.float32, n),
            heading=np.fromiter((nan if r.heading is None else r.heading for r in readings), np.float32, n),
            speed_limit_kmh=np.fromiter(
                (nan if r.speed_limit_kmh is None else r.speed_limit_kmh for r in readings), np.float32, n
            ),
            lateral_accel_ms2=np.fromiter(
                (nan if r.lateral_accel_ms2 is None else r.lateral_accel_ms2 for r in readings), np.float32, n
            ),
            source_partition=np.asarray(partitions, dtype=np.int32).reshape(n),
            source_offset=np.asarray(offsets, dtype=np.int64).reshape(n),
            source_watermark_ms=np.fromiter((r.ts_ms for r in readings), np.int64, n)
            if watermarks is None
            else np.asarray(watermarks, dtype=np.int64).reshape(n),
            data_json=tuple(None if r.data is None else msgspec.json.encode(r.data) for r in readings)
            if has_data
            else (),
        )

    def to_readings(self) -> list[Reading]:
        """Back to structs (activation replays, tests). Inverse of `from_readings` up to float32 rounding."""
        out = []
        for i in range(len(self)):
            limit = float(self.speed_limit_kmh[i])
            lateral = float(self.lateral_accel_ms2[i])
            speed, accel, heading = float(self.speed_kmh[i]), float(self.accel_ms2[i]), float(self.heading[i])
            lat, lon = float(self.lat[i]), float(self.lon[i])
            out.append(
                Reading(
                    event_id=uuid.UUID(bytes=self.event_id[i].tobytes()),
                    driver_id=self.driver_id[i].decode(),
                    ts_ms=int(self.ts_ms[i]),
                    type=READING_TYPES[int(self.type_code[i])],
                    lat=None if lat != lat else lat,
                    lon=None if lon != lon else lon,
                    speed_kmh=None if speed != speed else speed,
                    accel_ms2=None if accel != accel else accel,
                    heading=None if heading != heading else heading,
                    speed_limit_kmh=None if limit != limit else limit,
                    lateral_accel_ms2=None if lateral != lateral else lateral,
                    data=None
                    if not self.data_json or self.data_json[i] is None
                    else msgspec.json.decode(self.data_json[i]),
                )
            )
        return out


def empty_reading_columns() -> ReadingColumns:
    return ReadingColumns.from_readings([], [], [])


class ShardItem(msgspec.Struct, frozen=True, array_like=True):
    """One reading routed to a shard, with its Kafka position (the per-driver replay order) and the partition's
    log time when it arrived (`domain.log_time`; None for readings stored before log time was kept)."""

    reading: Reading
    partition: int
    offset: int
    arrived_ms: int | None = None


_SHARD_ITEMS_ENCODER = msgspec.msgpack.Encoder(uuid_format="bytes")
_SHARD_ITEMS_DECODER = msgspec.msgpack.Decoder(list[ShardItem])


def encode_shard_items(items: Sequence[ShardItem]) -> bytes:
    """One msgpack blob per shard per batch (module functions, not the codec objects, are what actor
    code references: Ray pickles actor methods by value and msgspec codecs cannot be pickled)."""
    return _SHARD_ITEMS_ENCODER.encode(items)


def decode_shard_items(blob: bytes) -> list[ShardItem]:
    return _SHARD_ITEMS_DECODER.decode(blob)


class NewEvent(msgspec.Struct, frozen=True, array_like=True):
    """A domain event ready to append: its stream position and its JSON payload (the `domain_events` row).

    `seq` is the Kafka offset of the reading whose step emitted it: the live-message sequence number
    (see `LivePosition`)."""

    event_id: uuid.UUID
    stream_id: str
    stream_version: int
    event_type: str
    occurred_at_ms: int
    payload_json: bytes
    seq: int


class SnapshotRow(msgspec.Struct, frozen=True, array_like=True):
    """A driver's state as of `source_offset` (the last reading folded into it) and `stream_version`."""

    driver_id: str
    stream_version: int
    state: bytes
    state_format: int
    last_ts_ms: int
    source_partition: int
    source_offset: int
    open: bool = False  # DriverState.is_open: the shard keeps (and after a restart reloads) this driver


class LivePosition(msgspec.Struct, frozen=True, array_like=True):
    """The newest reading of a driver in a batch, for the Redis live projection and WebSocket.

    `seq` is the reading's Kafka offset: monotonic per driver (one key → one partition), the same on
    a replay, so viewers can resume from it and drop repeats."""

    driver_id: str
    seq: int
    ts_ms: int
    lat: float | None  # None: positions stripped (mileage_only)
    lon: float | None
    speed_kmh: float | None
    heading: float | None
    trip_id: uuid.UUID | None


class ShardOutput(msgspec.Struct, frozen=True):
    """What a shard returns for one batch; every list is in a deterministic order."""

    shard: int
    events: list[NewEvent] = []
    snapshots: list[SnapshotRow] = []
    trips: list[TripSummary] = []
    live: list[LivePosition] = []
    late_readings: int = 0


_NO_REQUEST_IDS = np.empty(0, dtype=np.int32)


@dataclass(frozen=True, slots=True)
class PartitionOffset:
    """`next_offset` is the first offset NOT yet covered: what a restarted consumer seeks to."""

    topic: str
    partition: int
    next_offset: int
    log_ms: int | None = None  # the partition's log time at next_offset (domain.log_time); None: none yet


@dataclass(frozen=True, slots=True)
class PersistBatch:
    """One transaction's worth: readings, the shards' outputs, and the offsets they cover.

    `request_ids`: every distinct `x-request-id` of the polled messages (dead letters included), for logs."""

    consumer_group: str
    readings: ReadingColumns
    offsets: tuple[PartitionOffset, ...]
    outputs: tuple[ShardOutput, ...] = field(default=())
    request_ids: tuple[str, ...] = ()
    # Per reading (aligned with `readings`, so with its (partition, offset)): the index in `request_ids` of the
    # `x-request-id` it arrived with, -1 for none. Empty when no reading carried one (no per-row cost then).
    request_id_index: np.ndarray = field(default_factory=lambda: _NO_REQUEST_IDS)

    @property
    def events(self) -> list[NewEvent]:
        return [e for out in self.outputs for e in out.events]
