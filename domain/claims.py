"""First notice of loss (issue 16 item 3): a `crash_detected` event opens a claim; the driver confirms or
rejects it once. Pure: the claim a crash opens, its id, and the one allowed transition.

The claim id is uuid5 of the crash event's id, so a replayed or redelivered crash names the same claim and the
store's `ON CONFLICT DO NOTHING` never opens two. The claim keeps the crash's buffers (the readings of the
`crash_pre_s` before and `crash_post_s` after the impact, 30 s each by default), its location and speed. A
location is optional: a driver whose positions are not kept (a privacy mode) has a claim without one.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable
from typing import Literal

import msgspec

from domain.batches import NewEvent
from domain.events import CrashDetected, CrashSample

CLAIM_NAMESPACE = uuid.UUID("6f1d2a9e-3c4b-5d8e-9f0a-1b2c3d4e5f60")
ClaimStatus = Literal["open", "confirmed", "rejected"]
CLAIM_STATUSES: tuple[ClaimStatus, ...] = ("open", "confirmed", "rejected")
CRASH_TAG = "crash_detected"


class ClaimReading(msgspec.Struct, frozen=True, kw_only=True):
    """One reading around the impact as a claim shows it; `offset_s` is its time relative to the impact."""

    ts_ms: int
    offset_s: float
    lat: float | None
    lon: float | None
    speed_kmh: float | None
    accel_ms2: float | None
    heading: float | None


class ClaimOpening(msgspec.Struct, frozen=True, kw_only=True):
    """What a crash puts in a new claim (the `claims` row's crash-derived columns)."""

    claim_id: uuid.UUID
    crash_event_id: uuid.UUID
    driver_id: str
    trip_id: uuid.UUID | None
    occurred_at_ms: int
    trigger: str
    peak_g: float
    lat: float | None
    lon: float | None
    speed_kmh: float | None
    readings: tuple[ClaimReading, ...]


class ClaimTransitionError(ValueError):
    """A confirmation of a claim that is not open (confirmed or rejected already): a 409, never a 500."""


def claim_id(crash_event_id: uuid.UUID) -> uuid.UUID:
    """The claim a crash opens: the same crash, replayed or redelivered, names the same claim."""
    return uuid.uuid5(CLAIM_NAMESPACE, str(crash_event_id))


def _known(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _location(lat: float | None, lon: float | None) -> tuple[float | None, float | None]:
    lat, lon = _known(lat), _known(lon)
    return (lat, lon) if lat is not None and lon is not None else (None, None)


class _Sample(msgspec.Struct, frozen=True, array_like=True):
    """A `CrashSample` read leniently: a driver whose positions are not kept may have none (null)."""

    ts_ms: int
    lat: float | None = None
    lon: float | None = None
    speed_kmh: float | None = None
    accel_ms2: float | None = None
    heading: float | None = None


class _Crash(msgspec.Struct, frozen=True, kw_only=True):
    """The fields of a stored `crash_detected` payload a claim needs, location optional."""

    event_id: uuid.UUID
    driver_id: str
    trip_id: uuid.UUID | None
    occurred_at_ms: int
    peak_g: float
    trigger: str
    lat: float | None = None
    lon: float | None = None
    speed_kmh: float | None = None
    pre: list[_Sample] = []
    post: list[_Sample] = []


def _reading(sample: CrashSample | _Sample, impact_ms: int) -> ClaimReading:
    lat, lon = _location(sample.lat, sample.lon)
    return ClaimReading(
        ts_ms=sample.ts_ms, offset_s=(sample.ts_ms - impact_ms) / 1000.0, lat=lat, lon=lon,
        speed_kmh=_known(sample.speed_kmh), accel_ms2=_known(sample.accel_ms2), heading=_known(sample.heading),
    )  # fmt: skip


def opening_of(crash: CrashDetected | _Crash) -> ClaimOpening:
    """The claim `crash` opens: its buffers in time order (pre, then post), location and speed where known."""
    lat, lon = _location(crash.lat, crash.lon)
    return ClaimOpening(
        claim_id=claim_id(crash.event_id),
        crash_event_id=crash.event_id,
        driver_id=crash.driver_id,
        trip_id=crash.trip_id,
        occurred_at_ms=crash.occurred_at_ms,
        trigger=crash.trigger,
        peak_g=crash.peak_g,
        lat=lat,
        lon=lon,
        speed_kmh=_known(crash.speed_kmh),
        readings=tuple(_reading(s, crash.occurred_at_ms) for s in (*crash.pre, *crash.post)),
    )


_DECODE_CRASH = msgspec.json.Decoder(_Crash).decode


def opening_of_event(event: NewEvent) -> ClaimOpening:
    """The claim a stored `crash_detected` event opens."""
    return opening_of(_DECODE_CRASH(event.payload_json))


def claims_opened(events: Iterable[NewEvent]) -> list[ClaimOpening]:
    """The claims a batch's new events open, in event order (one per `crash_detected`)."""
    return [opening_of_event(e) for e in events if e.event_type == CRASH_TAG]


def decide(status: str, confirmed: bool) -> ClaimStatus:
    """The status after the driver's answer; only an open claim may be confirmed or rejected, once."""
    if status != "open":
        raise ClaimTransitionError(f"claim is {status} already; only an open claim can be confirmed or rejected")
    return "confirmed" if confirmed else "rejected"
