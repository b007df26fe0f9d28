"""Trip segmentation, ordering, late readings, tick and snapshots of the trip state machine."""

from __future__ import annotations

import msgspec
import pytest

from domain.driver_state import DriverState, SnapshotVersionError
from domain.events import TripDiscarded, TripEnded, TripStarted
from domain.ids import trip_id
from domain.readings import ReadingType
from domain.rules import TripRules
from domain.trip_machine import DISCARD_REASON, step, step_many, tick
from tests.unit.domain_helpers import Drive, encoded, of_type
from tests.unit.domain_helpers import tags as all_tags

RULES = TripRules()
NOW_RULES = TripRules(reorder_window_ms=0)  # release every reading at once: easier to read


def tags(events) -> list[str]:
    """The trip lifecycle tags. Drive's instant speed steps (0 → 50 km/h in a second) are harsh by GNSS
    speed change since issue 12; harsh detection has its own tests (test_detectors.py)."""
    return [t for t in all_tags(events) if not t.startswith("harsh_")]


def run(readings, rules=NOW_RULES, timezone="UTC"):
    """Fold the readings; the events without harsh episodes (see `tags`)."""
    state = DriverState.initial("drv-1", timezone)
    state, events = step_many(state, readings, rules)
    return state, [e for e in events if not e.__struct_config__.tag.startswith("harsh_")]


def test_ignition_trip_starts_and_ends_with_a_summary():
    d = Drive()
    d.trip(seconds=600, speed_kmh=54.0)
    state, events = run(d.readings)
    assert tags(events) == ["trip_started", "trip_ended"]
    started, ended = events
    assert isinstance(started, TripStarted) and isinstance(ended, TripEnded)
    assert started.start_reason == "ignition_on"
    assert started.occurred_at_ms == d.readings[0].ts_ms
    summary = ended.summary
    assert summary.trip_id == started.trip_id == trip_id("drv-1", d.readings[0].event_id)
    assert summary.end_reason == "ignition_off"
    assert summary.end_ms == d.readings[-1].ts_ms
    assert summary.duration_s == pytest.approx(602.0)  # ignition_on at 0 s, ignition_off at 602 s
    assert summary.distance_m == pytest.approx(600 * 15.0, rel=0.01)  # 54 km/h = 15 m/s
    assert summary.max_speed_kmh == 54.0
    assert state.trip is None


def test_sustained_motion_starts_a_trip_backdated_to_the_first_moving_reading():
    d = Drive()
    d.stop(5)
    first_moving = d.add(speed_kmh=30.0)
    d.cruise(120, 30.0)
    _, events = run(d.readings)
    assert tags(events) == ["trip_started"]
    assert events[0].start_reason == "motion"
    assert events[0].occurred_at_ms == first_moving.ts_ms
    assert events[0].trip_id == trip_id("drv-1", first_moving.event_id)


def test_trip_is_announced_once_motion_has_lasted_start_motion_s():
    d = Drive()
    d.cruise(20, 8.0)  # 20 s at 8 km/h ≈ 44 m: neither 60 s nor 200 m yet
    state, events = run(d.readings)
    assert events == [] and state.trip is not None and not state.trip.announced
    _, events = step_many(state, d.cruise(45, 8.0), NOW_RULES)
    assert tags(events) == ["trip_started"]


def test_a_brief_motion_blip_makes_no_events_and_is_counted():
    d = Drive()
    d.cruise(3, 12.0)
    d.stop(400)
    state, events = run(d.readings)
    assert events == []
    assert state.trip is None and state.unconfirmed_trips == 1


@pytest.mark.parametrize("red_light_s", [60, 90, 120])
def test_a_stop_at_a_red_light_does_not_end_the_trip(red_light_s):
    d = Drive()
    d.ignition_on()
    d.cruise(200, 50.0)
    d.stop(red_light_s)
    d.cruise(200, 50.0)
    state, events = run(d.readings)
    assert tags(events) == ["trip_started"]
    assert state.trip is not None
    assert state.trip.idle_s == pytest.approx(red_light_s, abs=1.0)


def test_parking_for_300_s_ends_the_trip_at_the_start_of_the_stop():
    d = Drive()
    d.ignition_on()
    d.cruise(400, 50.0)
    stop = d.stop(301)
    state, events = run(d.readings)
    assert tags(events) == ["trip_started", "trip_ended"]
    summary = events[1].summary
    assert summary.end_reason == "parked"
    assert summary.end_ms == stop[0].ts_ms
    assert summary.idle_s == 1.0  # the second after ignition_on; the parking itself is not idling
    assert state.trip is None


def test_a_two_hour_gap_ends_the_trip_at_the_last_reading_before_it():
    d = Drive()
    d.ignition_on()
    moving = d.cruise(400, 50.0)
    d.silence(7200)
    d.cruise(100, 50.0)
    _, events = run(d.readings)
    assert tags(events) == ["trip_started", "trip_ended", "trip_started"]
    assert events[1].summary.end_reason == "data_gap"
    assert events[1].summary.end_ms == moving[-1].ts_ms
    assert events[2].start_reason == "motion"


def test_a_gap_shorter_than_gap_s_while_moving_does_not_end_the_trip():
    d = Drive()
    d.ignition_on()
    d.cruise(100, 50.0)
    d.silence(1800)  # a tunnel / dead zone while driving
    d.cruise(100, 50.0)
    _state, events = run(d.readings)
    assert tags(events) == ["trip_started"]


def test_a_trip_below_both_minimums_is_discarded_with_a_reason():
    d = Drive()
    d.ignition_on()
    d.cruise(60, 12.0)  # 60 s, 200 m
    d.ignition_off()
    _, events = run(d.readings)
    assert tags(events) == ["trip_started", "trip_discarded"]
    discarded = events[1]
    assert isinstance(discarded, TripDiscarded)
    assert discarded.reason == DISCARD_REASON and discarded.end_reason == "ignition_off"
    assert discarded.trip_id == events[0].trip_id
    assert discarded.distance_m < 500 and discarded.duration_s < 300


def test_a_short_but_long_enough_trip_counts_like_traccar():
    d = Drive()
    d.ignition_on()
    d.cruise(100, 36.0)  # 100 s but 1 km: distance is enough
    d.ignition_off()
    _, events = run(d.readings)
    assert tags(events) == ["trip_started", "trip_ended"]


def test_readings_within_the_reorder_window_are_processed_in_time_order():
    d = Drive()
    d.trip(seconds=400, speed_kmh=50.0)
    in_order = d.readings
    shuffled = list(in_order)
    for i in range(0, len(shuffled) - 3, 4):  # swap neighbours 1-3 s apart
        shuffled[i], shuffled[i + 3] = shuffled[i + 3], shuffled[i]
    rules = TripRules(reorder_window_ms=5_000)
    s1, e1 = step_many(DriverState.initial("drv-1"), in_order, rules)
    s2, e2 = step_many(DriverState.initial("drv-1"), shuffled, rules)
    assert encoded(e1) == encoded(e2)
    assert s1.to_bytes() == s2.to_bytes()
    assert s2.late_readings == 0


def test_events_wait_for_the_reorder_window():
    d = Drive()
    d.ignition_on()
    state, events = run(d.readings, RULES)
    assert events == [] and len(state.pending) == 1
    d.cruise(5, 20.0)
    _, events = step_many(state, d.readings[1:], RULES)
    assert tags(events) == ["trip_started"]


def test_a_late_reading_is_counted_and_changes_nothing():
    d = Drive()
    d.trip(seconds=400, speed_kmh=50.0)
    late = d.readings[100]
    state, _events = run(d.readings)
    before = state.to_bytes()
    state, more = step(state, late, NOW_RULES)
    assert more == []
    assert state.late_readings == 1
    restored = DriverState.from_bytes(before)
    restored.late_readings = 1
    assert restored.to_bytes() == state.to_bytes()


def test_a_reading_older_than_the_last_closed_trip_never_reopens_it():
    d = Drive()
    d.trip(seconds=400, speed_kmh=50.0)
    stray = d.readings[50]
    state, _events = run(d.readings, RULES)
    state, _ = tick(state, d.ts_ms + 60_000, RULES)  # release everything
    state, more = step(state, stray, RULES)
    assert more == [] and state.late_readings == 1 and state.trip is None


def test_duplicate_readings_in_the_window_are_dropped():
    d = Drive()
    d.trip(seconds=400, speed_kmh=50.0)
    doubled = []
    for r in d.readings:
        doubled += [r, r]
    _, e1 = step_many(DriverState.initial("drv-1"), d.readings, RULES)
    s2, e2 = step_many(DriverState.initial("drv-1"), doubled, RULES)
    assert encoded(e1) == encoded(e2)
    assert s2.duplicate_readings == len(d.readings)


def test_tick_closes_a_trip_whose_device_went_silent_while_parked():
    d = Drive()
    d.ignition_on()
    d.cruise(400, 50.0)
    stop = d.stop(20)
    state, events = run(d.readings, RULES)
    assert tags(events) == ["trip_started"]
    state, events = tick(state, stop[-1].ts_ms + 10_000, RULES)
    assert events == [] and state.pending == []  # buffer released, but not parked long enough yet
    state, events = tick(state, stop[0].ts_ms + 300_000, RULES)
    assert tags(events) == ["trip_ended"]
    assert events[0].summary.end_reason == "parked" and events[0].summary.end_ms == stop[0].ts_ms


def test_tick_closes_a_trip_after_gap_s_of_silence():
    d = Drive()
    d.ignition_on()
    moving = d.cruise(400, 50.0)
    state, _ = run(d.readings, RULES)
    state, events = tick(state, moving[-1].ts_ms + 3_600_000, RULES)
    assert events == []
    state, events = tick(state, moving[-1].ts_ms + 3_600_001, RULES)
    assert tags(events) == ["trip_ended"] and events[0].summary.end_reason == "data_gap"


def test_tick_then_the_same_readings_give_the_same_trip_as_readings_alone():
    d = Drive()
    d.ignition_on()
    d.cruise(400, 50.0)
    d.stop(400)
    _, by_readings = run(d.readings)
    state, first = run(d.readings[:-90])
    state, second = tick(state, d.readings[-90].ts_ms, NOW_RULES)
    state, third = step_many(state, d.readings[-90:], NOW_RULES)
    assert encoded(by_readings) == encoded(first + second + third)


def test_idle_state_snapshot_is_small_and_round_trips():
    d = Drive(driver_id="driver-with-a-rather-long-identifier-0001")
    d.trip(seconds=600, speed_kmh=50.0)
    state = DriverState.initial(d.driver_id, "America/Argentina/Buenos_Aires")
    state, _ = step_many(state, d.readings, RULES)
    state, _ = tick(state, d.ts_ms + 60_000, RULES)
    assert state.trip is None and state.pending == []
    blob = state.to_bytes()
    assert len(blob) <= 2048
    assert DriverState.from_bytes(blob) == state
    assert DriverState.from_bytes(blob).to_bytes() == blob


def test_idle_state_with_a_full_reorder_buffer_is_still_under_2_kb():
    d = Drive()
    d.stop(6)  # parked device still reporting at 1 Hz: a window's worth is buffered
    state, _ = run(d.readings, RULES)
    assert state.trip is None and len(state.pending) == 5
    assert len(state.to_bytes()) <= 2048


def test_snapshot_of_an_unknown_format_version_is_refused():
    blob = msgspec.msgpack.encode((999, {"driver_id": "x"}))
    with pytest.raises(SnapshotVersionError):
        DriverState.from_bytes(blob)


def test_initial_state_refuses_an_unknown_timezone():
    with pytest.raises(Exception, match="No time zone found"):
        DriverState.initial("drv-1", "Mars/Olympus_Mons")


def test_ignition_on_confirms_a_motion_trip_in_progress():
    d = Drive()
    first = d.add(speed_kmh=20.0)
    d.cruise(5, 20.0)
    d.add(speed_kmh=20.0, kind=ReadingType.IGNITION_ON)
    _, events = run(d.readings)
    assert tags(events) == ["trip_started"]
    assert events[0].occurred_at_ms == first.ts_ms and events[0].start_reason == "motion"


def test_events_are_emitted_once_per_trip_and_ids_are_stable():
    d = Drive()
    d.trip(seconds=400)
    d.silence(600)
    d.trip(seconds=400)
    _, e1 = run(d.readings)
    _, e2 = run(d.readings)
    assert tags(e1) == ["trip_started", "trip_ended"] * 2
    assert [e.event_id for e in e1] == [e.event_id for e in e2]
    assert len({e.event_id for e in e1}) == 4
    assert of_type(e1, "trip_ended")[0].summary.trip_id != of_type(e1, "trip_ended")[1].summary.trip_id


def test_a_reading_of_another_driver_is_a_programming_error():
    d = Drive(driver_id="someone-else")
    d.stop(1)
    with pytest.raises(ValueError, match="someone-else"):
        step(DriverState.initial("drv-1"), d.readings[0], RULES)


def test_inconsistent_rules_are_refused():
    with pytest.raises(ValueError, match="harsh_braking_exit_mps2"):
        TripRules(harsh_braking_exit_mps2=-4.0)
    with pytest.raises(ValueError, match="parking_s"):
        TripRules(parking_s=7200.0)


def test_tick_emits_a_crash_once_its_post_window_is_over():
    d = Drive()
    d.stop(3)
    impact = d.add(speed_kmh=0.0, kind=ReadingType.CRASH)
    state, events = run(d.readings, RULES)
    state, events = tick(state, impact.ts_ms + 30_000, RULES)
    assert events == [] and state.crash is not None  # post window still open
    state, events = tick(state, impact.ts_ms + 30_001, RULES)
    assert tags(events) == ["crash_detected"] and events[0].trip_id is None


def test_a_long_warm_up_after_ignition_is_discarded_and_the_drive_starts_by_motion():
    d = Drive()
    d.ignition_on()
    d.stop(301)
    first_moving = d.cruise(400, 50.0)[0]
    d.ignition_off()
    _, events = run(d.readings)
    assert tags(events) == ["trip_started", "trip_discarded", "trip_started", "trip_ended"]
    assert events[1].end_reason == "parked" and events[1].duration_s == 0.0
    assert events[2].start_reason == "motion" and events[2].occurred_at_ms == first_moving.ts_ms
