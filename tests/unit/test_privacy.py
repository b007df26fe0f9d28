"""domain.privacy: consent decisions, the fold, and what the live feeds may send per mode."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain import privacy
from domain.privacy import PrivacyRefused, PrivacyState, redact_live

pytestmark = pytest.mark.unit
TRIP = uuid.UUID(int=7)


def _position(trip_id=None) -> dict:
    return {"type": "position", "driver_id": "d1", "seq": 1, "ts_ms": 1, "lat": 45.0, "lon": 7.0,
            "speed_kmh": 50.0, "heading": 90.0, "trip_id": None if trip_id is None else str(trip_id)}


def test_a_mode_change_is_an_event_with_who_and_when_and_the_same_mode_again_is_none():
    state = PrivacyState(driver_id="d1")
    event = privacy.change_mode(state, "private_trips", "u1", "driver", 1_000)
    assert (event.mode, event.previous_mode, event.changed_by, event.occurred_at_ms) == ("private_trips", "full",
                                                                                         "u1", 1_000)
    after = privacy.fold(state, event)
    assert (after.mode, after.version) == ("private_trips", 1)
    assert privacy.change_mode(after, "private_trips", "u1", "driver", 2_000) is None


def test_unknown_modes_and_erased_drivers_are_refused():
    with pytest.raises(PrivacyRefused, match="unknown privacy mode"):
        privacy.change_mode(PrivacyState(driver_id="d1"), "secret", "u1", "driver", 1)
    with pytest.raises(PrivacyRefused, match="erased"):
        privacy.change_mode(PrivacyState(driver_id="d1", erased=True), "full", "u1", "driver", 1)


def test_trips_are_marked_private_only_in_the_private_trips_mode_and_once():
    with pytest.raises(PrivacyRefused, match="private_trips mode"):
        privacy.mark_trip_private(PrivacyState(driver_id="d1"), TRIP, "u1", "driver", 1)
    state = PrivacyState(driver_id="d1", mode="private_trips")
    marked = privacy.fold(state, privacy.mark_trip_private(state, TRIP, "u1", "driver", 1))
    assert marked.withholds(TRIP) and not marked.withholds(uuid.UUID(int=8))
    assert privacy.mark_trip_private(marked, TRIP, "u1", "driver", 2) is None


def test_erasure_happens_once_and_withholds_everything():
    state = PrivacyState(driver_id="d1")
    erased = privacy.fold(state, privacy.erase(state, "admin", "art. 17", 1))
    assert erased.erased and erased.withholds(None) and not erased.live_positions
    assert privacy.erase(erased, "admin", "again", 2) is None


def test_live_positions_stream_in_full_mode_only_and_never_for_a_private_trip():
    full = PrivacyState(driver_id="d1")
    assert redact_live(_position(), full) == _position()
    assert redact_live(_position(), None) == _position()
    private = PrivacyState(driver_id="d1", mode="private_trips", private_trips=frozenset({TRIP}))
    for state, message in ((private, _position()), (PrivacyState(driver_id="d1", mode="mileage_only"), _position()),
                           (full.__class__(driver_id="d1", private_trips=frozenset({TRIP})), _position(TRIP))):
        redacted = redact_live(message, state)
        assert (redacted["lat"], redacted["lon"], redacted["heading"], redacted["positions_withheld"]) == (
            None, None, None, True)
        assert redacted["speed_kmh"] == 50.0


def test_event_payloads_lose_positions_and_crash_samples_but_keep_the_rest():
    sample = [1, 1.0, 2.0, None, None, None]
    crash = {"type": "crash_detected", "driver_id": "d1", "seq": 3, "payload": {
        "type": "crash_detected", "trip_id": str(TRIP), "lat": 1.0, "lon": 2.0, "peak_g": 5.0, "pre": [sample],
        "post": []}}
    redacted = redact_live(crash, PrivacyState(driver_id="d1", mode="mileage_only"))
    assert redacted["payload"] == {"type": "crash_detected", "trip_id": str(TRIP), "peak_g": 5.0, "pre": [],
                                   "post": [], "positions_withheld": True}


@given(st.lists(st.sampled_from(privacy.MODES), max_size=8))
def test_replaying_the_changes_gives_the_last_mode_and_one_version_per_event(modes):
    state, events = PrivacyState(driver_id="d1"), []
    for i, mode in enumerate(modes):
        if (event := privacy.change_mode(state, mode, "u", "driver", i)) is not None:
            events.append(event)
            state = privacy.fold(state, event)
    replayed = privacy.replay("d1", events)
    assert replayed == state and replayed.version == len(events)
    assert len({e.event_id for e in events}) == len(events)


def test_a_live_claim_announcement_on_a_withheld_trip_loses_its_location():
    message = {"type": "claim_opened", "driver_id": "d", "trip_id": str(uuid.uuid4()), "lat": 45.1, "lon": 7.2,
               "speed_kmh": 50.0, "peak_g": 4.0}
    withheld = PrivacyState(driver_id="d", mode="mileage_only")
    shown = redact_live(message, withheld)
    assert (shown["lat"], shown["lon"], shown["positions_withheld"]) == (None, None, True)
    assert shown["speed_kmh"] == 50.0 and shown["peak_g"] == 4.0
    assert redact_live(message, PrivacyState(driver_id="d", mode="full")) == message
