"""A trip's episodes in one shape, whatever detector found them: what `GET /trips/{id}/events` lists.

Pure. Built from a stored event payload (the JSON `domain_events.payload` holds, decoded by
`domain.events.decode_event`) plus, for the episodes whose event carries no position (speeding, phone use),
the position of the reading at the episode's start, which the caller looks up.
"""

from __future__ import annotations

import uuid
from typing import Literal

import msgspec

from domain.events import (
    CrashDetected,
    DomainEventBase,
    HarshAccelerationDetected,
    HarshBrakingDetected,
    HarshCorneringDetected,
    PhoneUseDetected,
    SpeedingDetected,
    decode_event,
    event_type,
)

Grade = Literal["low", "medium", "high"]
_SUFFIX = "_detected"
_HARSH = (HarshBrakingDetected, HarshAccelerationDetected, HarshCorneringDetected)
# The detectors' events: everything of a trip but its start and end.
EPISODE_TAGS: tuple[str, ...] = tuple(
    cls.__struct_config__.tag  # type: ignore[misc]
    for cls in (*_HARSH, SpeedingDetected, PhoneUseDetected, CrashDetected)
)


class Episode(msgspec.Struct, frozen=True, kw_only=True):
    """One episode. `type` is the event tag without `_detected`; `grade` the payload's `grade` when it has a
    known one; times are device epoch ms (a crash is an instant: start = end = its trigger); the peak is the
    strongest magnitude in `peak_unit` (harsh: m/s², speeding: km/h driven, crash: g; none for phone use);
    `lat`/`lon` where it started (a crash: its trigger), None when unknown; `speed_limit_kmh` and `band`
    (moderate | severe) for speeding only."""

    event_id: uuid.UUID
    type: str
    grade: Grade | None
    start_ms: int
    end_ms: int
    duration_s: float
    peak_value: float | None
    peak_unit: str | None
    lat: float | None
    lon: float | None
    speed_limit_kmh: float | None = None
    band: str | None = None


class _Graded(msgspec.Struct):
    grade: str | None = None


_DECODE_GRADE = msgspec.json.Decoder(_Graded).decode


def grade_of(payload_json: bytes | str) -> Grade | None:
    """The payload's `grade` (low | medium | high), or None when it has none or one we do not know. Read from
    the JSON rather than the event class, so payloads written by a newer detector keep their grade."""
    grade = _DECODE_GRADE(payload_json).grade
    return grade if grade in ("low", "medium", "high") else None  # type: ignore[return-value]


def episode_from_stored(payload_json: bytes | str, start_position: tuple[float, float] | None = None) -> Episode:
    """The episode of one stored detector event; `start_position` (lat, lon) is used when the event has no
    position of its own. Raises ValueError for an event that is not an episode (a trip start, a score)."""
    event = decode_event(payload_json)
    # a harsh event's grade as the event class reads it (written before grades existed: "medium", DOMAIN.md §4);
    # other episodes carry a grade only if a newer detector wrote one
    grade = event.grade if isinstance(event, _HARSH) else grade_of(payload_json)
    lat, lon = start_position if start_position is not None else (None, None)
    common = {"event_id": event.event_id, "type": _type(event), "grade": grade}
    if isinstance(event, _HARSH):
        return Episode(**common, start_ms=event.start_ms, end_ms=event.end_ms, duration_s=event.duration_s,
                       peak_value=event.peak_mps2, peak_unit="m/s²", lat=event.lat, lon=event.lon)
    if isinstance(event, SpeedingDetected):
        # `limit_kmh` is the limit at the sample of the largest excess, so their sum is the speed driven there.
        return Episode(**common, start_ms=event.start_ms, end_ms=event.end_ms, duration_s=event.duration_s,
                       peak_value=event.limit_kmh + event.max_excess_kmh, peak_unit="km/h", lat=lat, lon=lon,
                       speed_limit_kmh=event.limit_kmh, band=event.band)
    if isinstance(event, PhoneUseDetected):
        return Episode(**common, start_ms=event.start_ms, end_ms=event.end_ms, duration_s=event.duration_s,
                       peak_value=None, peak_unit=None, lat=lat, lon=lon)
    if isinstance(event, CrashDetected):
        return Episode(**common, start_ms=event.occurred_at_ms, end_ms=event.occurred_at_ms, duration_s=0.0,
                       peak_value=event.peak_g, peak_unit="g", lat=event.lat, lon=event.lon)
    raise ValueError(f"{event_type(event)} is not an episode")


def _type(event: DomainEventBase) -> str:
    tag = event_type(event)
    return tag[: -len(_SUFFIX)] if tag.endswith(_SUFFIX) else tag
