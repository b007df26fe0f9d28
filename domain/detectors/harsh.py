"""Harsh braking, acceleration and cornering as debounced, graded episodes with hysteresis.

Pure. A detector sees one value per sample (m/s²; `domain.detectors.motion` derives it): braking uses
−longitudinal, acceleration +longitudinal, cornering the signed lateral acceleration. An episode opens
when the magnitude reaches `enter` (the low grade) and the sample is not gated; it stays open while
the magnitude is ≥ `exit` (< enter), turning the same way for cornering, and samples keep arriving
within `harsh_max_gap_s`; it closes on the first sample below `exit` (`end_ms` = that sample), or at
its last sample when the gap is too long or the trip ends. A sample without a value (the device did not
know) neither extends nor closes it, for at most `harsh_max_gap_s`.

A closed episode becomes an event if it `qualifies` (cornering from heading must turn the same way for
`harsh_heading_min_samples`, or `harsh_heading_corroborated_samples` when the positions witness it) and
carries the `grade` of its peak: low, medium or high (TripRules).
"""

from __future__ import annotations

import uuid

import msgspec

from domain.events import HarshAccelerationDetected, HarshBrakingDetected, HarshCorneringDetected
from domain.ids import episode_event_id
from domain.readings import Reading
from domain.rules import TripRules

LOW, MEDIUM, HIGH = "low", "medium", "high"
SCORED_GRADES = (MEDIUM, HIGH)  # the grades that count as harsh in summaries, features and scoring


class HarshEpisode(msgspec.Struct, kw_only=True, array_like=True):
    """An open (mutable, owned by the trip state) harsh episode. `peak_mps2` is a magnitude.

    `sign` is the turning direction of a cornering episode (+1 right, −1 left; 0 for longitudinal
    episodes and for episodes restored from snapshots written before it existed). `samples` counts the
    samples at or above the exit threshold; `corroborated` is set when the positions witnessed the turn.
    """

    anchor_id: uuid.UUID  # the reading that opened it: seeds the event id
    start_ms: int
    last_ms: int
    peak_mps2: float
    speed_at_start_kmh: float
    lat: float | None  # None: positions stripped (mileage_only)
    lon: float | None
    source: str = "device"  # cornering only: device | heading
    sign: int = 0
    samples: int = 1
    corroborated: bool = False


def track(
    episode: HarshEpisode | None,
    value: float | None,
    *,
    enter: float,
    exit_: float,
    can_start: bool,
    gap_ok: bool,
    max_gap_ms: float,
    reading: Reading,
    prev_speed_kmh: float,
    signed: bool = False,
    source: str = "device",
    witness: float | None = None,
) -> tuple[HarshEpisode | None, HarshEpisode | None]:
    """Advance one detector by one sample. Returns (open episode or None, episode closed now or None).

    `value` None means "no measurement for this sample". `signed` (cornering): the magnitude is |value|
    and an episode only continues the same way; a sample turning the other way past `enter` closes it
    and opens the next. `witness` is the positions' signed lateral for this sample. A closed episode's
    `last_ms` is its end time.
    """
    ts = reading.ts_ms
    magnitude = None if value is None else (abs(value) if signed else value)
    sign = (1 if value >= 0.0 else -1) if signed and value is not None else 0
    closed = None
    if episode is not None:
        same_way = episode.sign == 0 or sign == 0 or sign == episode.sign
        if magnitude is not None and gap_ok and magnitude >= exit_ and same_way:
            episode.last_ms = ts
            episode.samples += 1
            if magnitude > episode.peak_mps2:
                episode.peak_mps2 = magnitude
            _witnessed(episode, witness, exit_)
            return episode, None
        if magnitude is None and gap_ok and ts - episode.last_ms <= max_gap_ms:
            return episode, None
        if gap_ok and magnitude is not None:
            episode.last_ms = ts  # the sample that ended it
            _witnessed(episode, witness, exit_)
        closed, episode = episode, None
    if can_start and magnitude is not None and magnitude >= enter:
        episode = HarshEpisode(
            anchor_id=reading.event_id,
            start_ms=ts,
            last_ms=ts,
            peak_mps2=magnitude,
            speed_at_start_kmh=prev_speed_kmh,
            lat=reading.lat,
            lon=reading.lon,
            source=source,
            sign=sign,
        )
        _witnessed(episode, witness, exit_)
    return episode, closed


def _witnessed(episode: HarshEpisode, witness: float | None, exit_: float) -> None:
    if witness is not None and episode.sign != 0 and witness * episode.sign >= exit_:
        episode.corroborated = True


def qualifies(kind: str, episode: HarshEpisode, rules: TripRules) -> bool:
    """True when a closed episode is an event: heading-derived cornering needs persistence."""
    if kind != "cornering" or episode.source != "heading" or episode.sign == 0:
        return True
    needed = rules.harsh_heading_corroborated_samples if episode.corroborated else rules.harsh_heading_min_samples
    return episode.samples >= needed


def grade_of(kind: str, peak_mps2: float, rules: TripRules) -> str:
    """low | medium | high for an episode of `kind` with this peak magnitude (TripRules thresholds)."""
    if kind == "braking":
        medium, high = -rules.harsh_braking_medium_mps2, -rules.harsh_braking_high_mps2
    elif kind == "acceleration":
        medium, high = rules.harsh_acceleration_medium_mps2, rules.harsh_acceleration_high_mps2
    else:
        medium, high = rules.harsh_cornering_medium_mps2, rules.harsh_cornering_high_mps2
    if peak_mps2 >= high:
        return HIGH
    return MEDIUM if peak_mps2 >= medium else LOW


_KINDS = {
    "braking": HarshBrakingDetected,
    "acceleration": HarshAccelerationDetected,
    "cornering": HarshCorneringDetected,
}


def to_event(
    kind: str, episode: HarshEpisode, driver_id: str, trip_id: uuid.UUID, grade: str
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
        grade=grade,
    )
    if cls is HarshCorneringDetected:
        return HarshCorneringDetected(lateral_source=episode.source, **fields)  # type: ignore[arg-type]
    return cls(**fields)  # type: ignore[return-value]
