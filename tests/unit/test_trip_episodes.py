"""A trip's episodes in one shape (domain/trip_episodes.py), from stored payloads as the event store holds them."""

from __future__ import annotations

import json
import uuid

import pytest

from domain.events import (
    CrashDetected,
    HarshBrakingDetected,
    HarshCorneringDetected,
    PhoneUseDetected,
    SpeedingDetected,
    TripStarted,
    encode_event,
)
from domain.trip_episodes import EPISODE_TAGS, episode_from_stored, grade_of

DRIVER, TRIP, T = "driver0001", uuid.uuid4(), 1_780_000_000_000
BASE = {"driver_id": DRIVER, "trip_id": TRIP}


def _braking(**changes) -> HarshBrakingDetected:
    fields = {"event_id": uuid.uuid4(), **BASE, "occurred_at_ms": T, "peak_mps2": 4.2, "duration_s": 2.0,
              "speed_at_start_kmh": 50.0, "start_ms": T, "end_ms": T + 2000, "lat": 45.1, "lon": 7.1, **changes}
    return HarshBrakingDetected(**fields)


def _with(payload: bytes, **extra) -> bytes:
    return json.dumps({**json.loads(payload), **extra}).encode()


def test_a_harsh_episode_has_its_peak_in_mps2_and_its_own_start_position():
    e = episode_from_stored(encode_event(_braking()), start_position=(0.0, 0.0))
    assert (e.type, e.start_ms, e.end_ms, e.duration_s) == ("harsh_braking", T, T + 2000, 2.0)
    assert (e.peak_value, e.peak_unit, e.lat, e.lon, e.grade) == (4.2, "m/s²", 45.1, 7.1, "medium")
    assert (e.speed_limit_kmh, e.band) == (None, None)


def test_a_harsh_grade_is_the_events_and_an_event_stored_before_grades_reads_as_medium():
    payload = encode_event(_braking())
    assert episode_from_stored(_with(payload, grade="high")).grade == "high"
    before_grades = json.dumps({k: v for k, v in json.loads(payload).items() if k != "grade"}).encode()
    assert episode_from_stored(before_grades).grade == "medium"


def test_other_episodes_have_a_grade_only_when_the_payload_names_a_known_one():
    assert grade_of(b'{"type":"speeding_detected"}') is None
    assert grade_of(b'{"type":"speeding_detected","grade":"high"}') == "high"
    assert grade_of(b'{"type":"speeding_detected","grade":"extreme"}') is None


def test_speeding_peaks_at_the_speed_driven_and_is_placed_at_the_reading_where_it_began():
    event = SpeedingDetected(event_id=uuid.uuid4(), **BASE, occurred_at_ms=T, band="severe", duration_s=30.0,
                             max_excess_kmh=34.0, limit_kmh=50.0, start_ms=T, end_ms=T + 30_000)
    e = episode_from_stored(encode_event(event), start_position=(45.2, 7.2))
    assert (e.type, e.peak_value, e.peak_unit, e.speed_limit_kmh, e.band) == ("speeding", 84.0, "km/h", 50.0,
                                                                             "severe")
    assert (e.lat, e.lon) == (45.2, 7.2)
    assert episode_from_stored(encode_event(event)).lat is None  # no reading found there


def test_phone_use_has_no_peak_and_a_crash_is_an_instant_in_g():
    phone = PhoneUseDetected(event_id=uuid.uuid4(), **BASE, occurred_at_ms=T, duration_s=12.0, start_ms=T,
                             end_ms=T + 15_000)
    e = episode_from_stored(encode_event(phone), start_position=(45.3, 7.3))
    assert (e.type, e.peak_value, e.peak_unit, e.duration_s, e.lat) == ("phone_use", None, None, 12.0, 45.3)
    crash = CrashDetected(event_id=uuid.uuid4(), **BASE, occurred_at_ms=T, peak_g=3.1, trigger="acceleration",
                          lat=45.4, lon=7.4, speed_kmh=60.0)
    c = episode_from_stored(encode_event(crash))
    assert (c.type, c.start_ms, c.end_ms, c.duration_s, c.peak_value, c.peak_unit, c.lat) == (
        "crash", T, T, 0.0, 3.1, "g", 45.4)


def test_cornering_is_an_episode_and_a_trip_start_is_not():
    cornering = HarshCorneringDetected(**{f: getattr(_braking(), f) for f in HarshBrakingDetected.__struct_fields__})
    assert episode_from_stored(encode_event(cornering)).type == "harsh_cornering"
    start = TripStarted(event_id=uuid.uuid4(), **BASE, occurred_at_ms=T, start_reason="motion", lat=1.0, lon=2.0)
    with pytest.raises(ValueError, match="trip_started is not an episode"):
        episode_from_stored(encode_event(start))


def test_the_episode_tags_are_the_detectors_events():
    assert EPISODE_TAGS == ("harsh_braking_detected", "harsh_acceleration_detected", "harsh_cornering_detected",
                            "speeding_detected", "phone_use_detected", "crash_detected")
