"""Harsh braking, acceleration and cornering as debounced episodes with hysteresis.

Pure. A detector sees one magnitude per sample (m/s², positive = past the threshold direction):
braking uses −accel, acceleration +accel, cornering |lateral|. An episode opens when the magnitude
reaches `enter` and the sample is not gated; it stays open while the magnitude is ≥ `exit` (< enter)
and samples keep arriving within `harsh_max_gap_s`; it closes on the first sample below `exit`
(`end_ms` = that sample), or at its last sample when the gap is too long or the trip ends.
"""

from __future__ import annotations

import uuid

import msgspec

from domain.events import HarshAccelerationDetected, HarshBrakingDetected, HarshCorneringDetected
from domain.ids import episode_event_id
from domain.readings import Reading


class HarshEpisode(msgspec.Struct, kw_only=True, array_like=True):
    """An open (mutable, owned by the trip state) harsh episode. `peak_mps2` is a magnitude."""

    anchor_id: uuid.UUID  # the reading that opened it: seeds the event id
    start_ms: int
    last_ms: int
    peak_mps2: float
    speed_at_start_kmh: float
    lat: float
    lon: float
    source: str = "device"  # cornering only: device | heading


def track(
    episode: HarshEpisode | None,
    value: float | None,
    enter: float,
    exit_: float,
    can_start: bool,
    gap_ok: bool,
    reading: Reading,
    prev_speed_kmh: float,
    source: str = "device",
) -> tuple[HarshEpisode | None, HarshEpisode | None]:
    """Advance one detector by one sample. Returns (open episode or None, episode closed now or None).

    `value` None means "no measurement for this sample" (e.g. cornering not derivable): it closes an
    open episode and cannot open one. A closed episode's `last_ms` is its end time.
    """
    ts = reading.ts_ms
    if episode is not None:
        if gap_ok and value is not None and value >= exit_:
            episode.last_ms = ts
            if value > episode.peak_mps2:
                episode.peak_mps2 = value
            return episode, None
        if gap_ok:
            episode.last_ms = ts  # the sample that ended it
        return None, episode
    if can_start and value is not None and value >= enter:
        return (
            HarshEpisode(
                anchor_id=reading.event_id,
                start_ms=ts,
                last_ms=ts,
                peak_mps2=value,
                speed_at_start_kmh=prev_speed_kmh,
                lat=reading.lat,
                lon=reading.lon,
                source=source,
            ),
            None,
        )
    return None, None


_KINDS = {
    "braking": HarshBrakingDetected,
    "acceleration": HarshAccelerationDetected,
    "cornering": HarshCorneringDetected,
}


def to_event(
    kind: str, episode: HarshEpisode, driver_id: str, trip_id: uuid.UUID
) -> HarshBrakingDetected | HarshAccelerationDetected | HarshCorneringDetected:
    """The domain event for a closed episode of `kind` (braking | acceleration | cornering)."""
    cls = _KINDS[kind]
    tag = cls.__struct_config__.tag
    fields = dict(
        event_id=episode_event_id(tag, driver_id, episode.anchor_id),  # type: ignore[arg-type]
        driver_id=driver_id,
        trip_id=trip_id,
        occurred_at_ms=episode.start_ms,
        peak_mps2=episode.peak_mps2,
        duration_s=(episode.last_ms - episode.start_ms) / 1000.0,
        speed_at_start_kmh=episode.speed_at_start_kmh,
        start_ms=episode.start_ms,
        end_ms=episode.last_ms,
        lat=episode.lat,
        lon=episode.lon,
    )
    if cls is HarshCorneringDetected:
        return HarshCorneringDetected(lateral_source=episode.source, **fields)  # type: ignore[arg-type]
    return cls(**fields)  # type: ignore[return-value]
