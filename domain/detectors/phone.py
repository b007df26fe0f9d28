"""Phone use while moving, as episodes.

Pure. A `phone_use` reading means "the phone is in use from this sample until the next one". Only
samples faster than `phone_use_min_speed_kmh` (10 km/h) count: the interval after such a sample
(capped at `exposure_max_interval_s`) is phone-use-while-moving exposure. Consecutive counting samples
form one episode; any other sample, or a gap over the cap, closes it. An episode with no exposure
(a lone sample followed by a gap) emits nothing.
"""

from __future__ import annotations

import uuid

import msgspec

from domain.events import PhoneUseDetected
from domain.ids import episode_event_id
from domain.readings import Reading, ReadingType
from domain.rules import TripRules


class PhoneEpisode(msgspec.Struct, kw_only=True, array_like=True):
    """An open phone-use episode (mutable, owned by the trip state)."""

    anchor_id: uuid.UUID
    start_ms: int
    last_ms: int
    moving_s: float = 0.0


def counts(reading: Reading, speed_kmh: float, rules: TripRules) -> bool:
    """True for a phone_use sample faster than the phone-use speed floor (`speed_kmh`: the reading's
    speed, or derived when it has none)."""
    return reading.type == ReadingType.PHONE_USE and speed_kmh > rules.phone_use_min_speed_kmh


def advance(
    episode: PhoneEpisode | None,
    prev_ts_ms: int,
    reading: Reading,
    speed_kmh: float,
    exposure_s: float,
    gap_ok: bool,
    rules: TripRules,
) -> tuple[PhoneEpisode | None, PhoneEpisode | None]:
    """One sample at `speed_kmh`. Returns (open episode, episode closed now). A closed episode's
    `last_ms` is its end."""
    in_use = counts(reading, speed_kmh, rules)
    closed = None
    if episode is not None:
        if not gap_ok:
            episode.last_ms = prev_ts_ms
            closed, episode = episode, None
        else:
            episode.moving_s += exposure_s
            episode.last_ms = reading.ts_ms
            if not in_use:
                closed, episode = episode, None
    if episode is None and in_use:
        episode = PhoneEpisode(anchor_id=reading.event_id, start_ms=reading.ts_ms, last_ms=reading.ts_ms)
    return episode, closed


def to_event(episode: PhoneEpisode, driver_id: str, trip_id: uuid.UUID) -> PhoneUseDetected | None:
    """The domain event of a closed episode, or None when it has no moving exposure."""
    if episode.moving_s <= 0.0:
        return None
    return PhoneUseDetected(
        event_id=episode_event_id("phone_use_detected", driver_id, episode.anchor_id),
        driver_id=driver_id,
        trip_id=trip_id,
        occurred_at_ms=episode.start_ms,
        duration_s=episode.moving_s,
        start_ms=episode.start_ms,
        end_ms=episode.last_ms,
    )
