"""Speeding against the posted limit (`speed_limit_kmh` of a reading), as banded episodes.

Pure. Band of one sample: excess = speed − limit; `moderate` from +15 km/h (limits ≤ 85 km/h) or
+20 km/h (above), `severe` from +30 / +40 km/h (TripRules). An episode runs over consecutive banded
samples; the interval to the next sample (capped at `exposure_max_interval_s`) is exposure of the
earlier sample's band. An episode shorter than `speeding_min_duration_s` is dropped entirely (no event,
no exposure). A missing limit, a sample under the margin or a gap over the cap closes the episode.
"""

from __future__ import annotations

import uuid

import msgspec

from domain.events import SpeedingDetected
from domain.ids import episode_event_id
from domain.readings import Reading
from domain.rules import TripRules

MODERATE = "moderate"
SEVERE = "severe"


class SpeedingEpisode(msgspec.Struct, kw_only=True, array_like=True):
    """An open speeding episode (mutable, owned by the trip state)."""

    anchor_id: uuid.UUID
    start_ms: int
    last_ms: int
    band_now: str  # band of the latest sample: the one the next interval is attributed to
    worst: str
    max_excess_kmh: float
    limit_kmh: float
    moderate_s: float = 0.0
    severe_s: float = 0.0


def band_of(speed_kmh: float, limit_kmh: float | None, rules: TripRules) -> tuple[str | None, float]:
    """(band or None, excess km/h) of one sample. No limit → (None, 0.0)."""
    if limit_kmh is None:
        return None, 0.0
    excess = speed_kmh - limit_kmh
    if limit_kmh <= rules.speeding_split_limit_kmh:
        moderate, severe = rules.speeding_moderate_low_kmh, rules.speeding_severe_low_kmh
    else:
        moderate, severe = rules.speeding_moderate_high_kmh, rules.speeding_severe_high_kmh
    if excess >= severe:
        return SEVERE, excess
    if excess >= moderate:
        return MODERATE, excess
    return None, excess


def advance(
    episode: SpeedingEpisode | None,
    prev_ts_ms: int,
    reading: Reading,
    speed_kmh: float,
    exposure_s: float,
    gap_ok: bool,
    rules: TripRules,
) -> tuple[SpeedingEpisode | None, SpeedingEpisode | None]:
    """One sample at `speed_kmh` (the reading's, or derived when it has none). Returns (open episode,
    episode closed now). A closed episode's `last_ms` is its end."""
    band, excess = band_of(speed_kmh, reading.speed_limit_kmh, rules)
    closed = None
    if episode is not None:
        if not gap_ok:
            episode.last_ms = prev_ts_ms
            closed, episode = episode, None
        else:
            if episode.band_now == SEVERE:
                episode.severe_s += exposure_s
            else:
                episode.moderate_s += exposure_s
            episode.last_ms = reading.ts_ms
            if band is None:
                closed, episode = episode, None
            else:
                episode.band_now = band
                if band == SEVERE:
                    episode.worst = SEVERE
                if excess > episode.max_excess_kmh:
                    episode.max_excess_kmh = excess
                    episode.limit_kmh = reading.speed_limit_kmh  # type: ignore[assignment]
    if episode is None and band is not None:
        episode = SpeedingEpisode(
            anchor_id=reading.event_id,
            start_ms=reading.ts_ms,
            last_ms=reading.ts_ms,
            band_now=band,
            worst=band,
            max_excess_kmh=excess,
            limit_kmh=reading.speed_limit_kmh,  # type: ignore[arg-type]
        )
    return episode, closed


def qualifies(episode: SpeedingEpisode, rules: TripRules) -> bool:
    """True when a closed episode lasted long enough to be an event and count as exposure."""
    return (episode.last_ms - episode.start_ms) >= rules.speeding_min_duration_s * 1000.0


def to_event(episode: SpeedingEpisode, driver_id: str, trip_id: uuid.UUID) -> SpeedingDetected:
    """The domain event of a closed, qualifying episode."""
    return SpeedingDetected(
        event_id=episode_event_id("speeding_detected", driver_id, episode.anchor_id),
        driver_id=driver_id,
        trip_id=trip_id,
        occurred_at_ms=episode.start_ms,
        band=episode.worst,  # type: ignore[arg-type]
        duration_s=(episode.last_ms - episode.start_ms) / 1000.0,
        max_excess_kmh=episode.max_excess_kmh,
        limit_kmh=episode.limit_kmh,
        start_ms=episode.start_ms,
        end_ms=episode.last_ms,
        moderate_s=episode.moderate_s,
        severe_s=episode.severe_s,
    )
