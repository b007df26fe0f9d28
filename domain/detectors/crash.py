"""Crash detection: a `crash` reading or an acceleration of at least `crash_g`.

Pure. The magnitude is |accel| or, when the device gives lateral acceleration, √(accel² + lateral²); an unknown
acceleration counts as 0 (a device without an accelerometer is left to send `crash` readings).
A crash waits `crash_post_s` for its post-buffer; further triggers inside that window join it (peak
kept). The pre-buffer is the trip's readings in the `crash_pre_s` before the trigger (empty outside a
trip, where no history is kept).
"""

from __future__ import annotations

import uuid
from math import sqrt

import msgspec

from domain.events import CrashDetected, CrashSample
from domain.ids import episode_event_id
from domain.readings import Reading, ReadingType
from domain.rules import STANDARD_GRAVITY_MPS2, TripRules


class PendingCrash(msgspec.Struct, kw_only=True):
    """A detected crash collecting its post-buffer (mutable, owned by the driver state)."""

    anchor_id: uuid.UUID
    trip_id: uuid.UUID | None
    occurred_at_ms: int
    post_until_ms: int
    peak_g: float
    trigger: str
    lat: float | None  # None: positions stripped (mileage_only)
    lon: float | None
    speed_kmh: float | None
    pre: list[CrashSample] = []
    post: list[CrashSample] = []


def magnitude_g(reading: Reading) -> float:
    """Acceleration magnitude of a sample in g (an unknown component counts as 0)."""
    a = reading.accel_ms2 if reading.accel_ms2 is not None else 0.0
    lat = reading.lateral_accel_ms2
    mag = abs(a) if lat is None else sqrt(a * a + lat * lat)
    return mag / STANDARD_GRAVITY_MPS2


def is_trigger(reading: Reading, rules: TripRules) -> bool:
    """True for a crash reading or a sample at or above `crash_g`."""
    return reading.type == ReadingType.CRASH or magnitude_g(reading) >= rules.crash_g


def sample(reading: Reading) -> CrashSample:
    """The compact form of a reading kept in crash buffers."""
    return CrashSample(reading.ts_ms, reading.lat, reading.lon, reading.speed_kmh, reading.accel_ms2, reading.heading)


def start(reading: Reading, trip_id: uuid.UUID | None, recent: list[Reading], rules: TripRules) -> PendingCrash:
    """A new pending crash triggered by `reading`; `recent` are the trip's readings before it."""
    since = reading.ts_ms - int(rules.crash_pre_s * 1000)
    return PendingCrash(
        anchor_id=reading.event_id,
        trip_id=trip_id,
        occurred_at_ms=reading.ts_ms,
        post_until_ms=reading.ts_ms + int(rules.crash_post_s * 1000),
        peak_g=magnitude_g(reading),
        trigger="crash_reading" if reading.type == ReadingType.CRASH else "acceleration",
        lat=reading.lat,
        lon=reading.lon,
        speed_kmh=reading.speed_kmh,
        pre=[sample(r) for r in recent if r.ts_ms >= since],
    )


def join(crash: PendingCrash, reading: Reading) -> None:
    """A further trigger inside the post window: same crash, maybe a higher peak."""
    g = magnitude_g(reading)
    if g > crash.peak_g:
        crash.peak_g = g


def to_event(crash: PendingCrash, driver_id: str) -> CrashDetected:
    """The domain event of a crash whose post window has passed (or whose trip ended)."""
    return CrashDetected(
        event_id=episode_event_id("crash_detected", driver_id, crash.anchor_id),
        driver_id=driver_id,
        trip_id=crash.trip_id,
        occurred_at_ms=crash.occurred_at_ms,
        peak_g=crash.peak_g,
        trigger=crash.trigger,  # type: ignore[arg-type]
        lat=crash.lat,
        lon=crash.lon,
        speed_kmh=crash.speed_kmh,
        pre=crash.pre,
        post=crash.post,
    )
