"""The per-driver state folded by `domain.trip_machine`, and its versioned snapshot bytes.

Pure data. The state is a plain msgspec Struct owned by one caller at a time: `step` mutates it in
place for speed and returns it (keep `to_bytes()` if you need the old value). Everything that can
change a future event is in here, so `from_bytes(to_bytes())` continues exactly where it stopped.

Snapshot format: msgpack array `[SNAPSHOT_FORMAT_VERSION, state]`, UUIDs as 16 raw bytes. A reader
refuses a version it does not know (an upcaster per old version goes in `_UPCASTERS`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import msgspec

from domain.detectors.crash import PendingCrash
from domain.detectors.harsh import HarshEpisode
from domain.detectors.motion import MotionMemory
from domain.detectors.night import zone
from domain.detectors.phone import PhoneEpisode
from domain.detectors.speeding import SpeedingEpisode
from domain.events import DomainEvent
from domain.readings import Reading
from domain.rules import SNAPSHOT_FORMAT_VERSION

NEVER_MS = -(1 << 62)  # "no time yet": below any epoch-ms timestamp, and fits msgpack int64


class OpenTrip(msgspec.Struct, kw_only=True):
    """The trip in progress. Exposure seconds of the current stop wait in `stop_*` until it either ends
    (motion resumes: they count) or becomes parking (the trip ends at the stop's start: they do not)."""

    trip_id: uuid.UUID
    start_ms: int
    start_reason: str  # ignition_on | motion
    start_lat: float | None  # None: positions stripped (mileage_only)
    start_lon: float | None
    announced: bool  # TripStarted emitted; until then events wait in `held`
    held: list[DomainEvent] = []
    distance_m: float = 0.0
    moving_s: float = 0.0
    max_speed_kmh: float = 0.0
    idle_s: float = 0.0
    night_s: float = 0.0
    speeding_moderate_s: float = 0.0
    speeding_severe_s: float = 0.0
    phone_use_moving_s: float = 0.0
    stop_since_ms: int | None = None
    stop_idle_s: float = 0.0
    stop_night_s: float = 0.0
    harsh_braking_count: int = 0  # medium + high episodes (the ones that count as harsh)
    harsh_acceleration_count: int = 0
    harsh_cornering_count: int = 0
    crash_count: int = 0
    braking: HarshEpisode | None = None
    accelerating: HarshEpisode | None = None
    cornering: HarshEpisode | None = None
    speeding: SpeedingEpisode | None = None
    phone: PhoneEpisode | None = None
    recent: list[Reading] = []  # crash pre-buffer: this trip's last `crash_pre_s` of readings
    harsh_braking_low_count: int = 0
    harsh_braking_high_count: int = 0
    harsh_acceleration_low_count: int = 0
    harsh_acceleration_high_count: int = 0
    harsh_cornering_low_count: int = 0
    harsh_cornering_high_count: int = 0
    motion: MotionMemory | None = None  # derived speed/bearing of the last samples (None: none yet)
    quality_flags: list[str] = []  # TripSummary.quality_flags, in the order first seen

    def emit(self, event: DomainEvent, out: list[DomainEvent]) -> None:
        """Emit an event of this trip; until the trip is announced it waits in `held` (in order)."""
        if self.announced:
            out.append(event)
        else:
            self.held.append(event)


class DriverState(msgspec.Struct, kw_only=True):
    """Everything `step` knows about one driver. Times are device epoch ms.

    `pending` is the reorder buffer, sorted by (ts_ms, event_id); readings at or below `watermark_ms`
    have been released in that order, so anything arriving at or below it is late.
    """

    driver_id: str
    timezone: str = "UTC"
    newest_ms: int = NEVER_MS
    watermark_ms: int = NEVER_MS
    pending: list[Reading] = []
    last: Reading | None = None  # last released reading
    last_trip_end_ms: int = NEVER_MS
    trip: OpenTrip | None = None
    crash: PendingCrash | None = None
    late_readings: int = 0
    duplicate_readings: int = 0
    unconfirmed_trips: int = 0  # motion-started trips that ended before being confirmed (no events)
    # log time (domain.log_time) when the newest reading arrived: silence is measured from here
    arrival_ms: int = NEVER_MS

    @classmethod
    def initial(cls, driver_id: str, timezone: str = "UTC") -> DriverState:
        """A driver never seen before. `timezone` is an IANA name (checked now: night exposure needs it)."""
        zone(timezone)
        return cls(driver_id=driver_id, timezone=timezone)

    @property
    def is_open(self) -> bool:
        """Something waits for more readings or for log time: a trip, the reorder buffer, a crash's post window.
        Such a driver stays active in its shard (log time must be able to close it)."""
        return self.trip is not None or bool(self.pending) or self.crash is not None

    @property
    def open_trip_id(self) -> uuid.UUID | None:
        """The id of the trip in progress (announced or not), else None."""
        return None if self.trip is None else self.trip.trip_id

    def to_bytes(self) -> bytes:
        """Versioned msgpack snapshot. Deterministic: equal states give equal bytes."""
        return _ENCODER.encode((SNAPSHOT_FORMAT_VERSION, self))

    @classmethod
    def from_bytes(cls, data: bytes) -> DriverState:
        """Restore a snapshot written by `to_bytes` (any known version)."""
        version, raw = _ENVELOPE_DECODER.decode(data)
        if version == SNAPSHOT_FORMAT_VERSION:
            return _STATE_DECODER.decode(raw)
        upcast = _UPCASTERS.get(version)
        if upcast is None:
            raise SnapshotVersionError(f"snapshot format {version} is not readable by this version of the code")
        return upcast(raw)

    def copy(self) -> DriverState:
        """An independent deep copy (via the snapshot form)."""
        return DriverState.from_bytes(self.to_bytes())


class SnapshotVersionError(ValueError):
    """The snapshot was written in a format this code cannot read."""


_ENCODER = msgspec.msgpack.Encoder(uuid_format="bytes")
_ENVELOPE_DECODER = msgspec.msgpack.Decoder(tuple[int, msgspec.Raw])
_STATE_DECODER = msgspec.msgpack.Decoder(DriverState)
# version -> function(raw state bytes) -> DriverState. Empty: version 1 is the first format.
_UPCASTERS: dict[int, Callable[[msgspec.Raw], DriverState]] = {}
