"""Harsh driving, speeding, night, phone use and crash detection, through the trip state machine."""

from __future__ import annotations

import math
from datetime import datetime

import pytest

from domain.detectors.night import is_night, night_seconds
from domain.driver_state import DriverState
from domain.events import CrashDetected, HarshBrakingDetected, HarshCorneringDetected, SpeedingDetected
from domain.geo import bearing_deg, heading_delta_deg, lateral_accel_from_heading_mps2
from domain.readings import ReadingType
from domain.rules import TripRules
from domain.trip_machine import step_many
from tests.unit.domain_helpers import Drive, of_type

RULES = TripRules(reorder_window_ms=0)


def run(d: Drive, timezone: str = "UTC", rules: TripRules = RULES):
    state = DriverState.initial(d.driver_id, timezone)
    return step_many(state, d.readings, rules)


def ramp(d: Drive, to_kmh: float, step_kmh: float = 5.0, **kw) -> None:
    """Change speed gently (5 km/h a second ≈ 1.4 m/s²: never harsh) to `to_kmh`."""
    while abs(to_kmh - d.speed_kmh) > step_kmh:
        d.add(speed_kmh=d.speed_kmh + math.copysign(step_kmh, to_kmh - d.speed_kmh), **kw)
    d.add(speed_kmh=to_kmh, **kw)


def driving(seconds: int = 30, speed_kmh: float = 50.0, **kw) -> Drive:
    d = Drive(**kw)
    d.ignition_on()
    ramp(d, speed_kmh)
    d.cruise(seconds, speed_kmh)
    return d


def finish(d: Drive) -> None:
    ramp(d, 50.0)
    d.cruise(400, 50.0)
    ramp(d, 0.0)
    d.ignition_off()


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def constant(d: Drive, mps2: float, seconds: int, **kw) -> list:
    """`seconds` samples changing speed by `mps2` each second (the GNSS speed tells it)."""
    return [d.add(speed_kmh=max(d.speed_kmh + mps2 * 3.6, 0.0), **kw) for _ in range(seconds)]


def harsh(events, kind: str) -> list:
    return of_type(events, f"harsh_{kind}_detected")


# --- harsh braking / acceleration -----------------------------------------------------------------


def test_a_hard_brake_in_the_gnss_speed_is_one_graded_event_with_its_peak():
    d = driving()
    d.add(speed_kmh=40.0)
    first = d.add(speed_kmh=25.0)
    d.add(speed_kmh=12.0)
    d.add(speed_kmh=10.0)
    end = d.add(speed_kmh=10.0)
    finish(d)
    _state, events = run(d)
    brakes = harsh(events, "braking")
    assert len(brakes) == 1
    brake = brakes[0]
    assert isinstance(brake, HarshBrakingDetected)
    # two-interval windows: (25-50)/2 s = -3.47, (12-40)/2 s = -3.89, (10-25)/2 s = -2.08, (10-12)/2 s
    assert brake.peak_mps2 == pytest.approx(28 / 3.6 / 2)
    assert brake.grade == "medium"
    assert brake.start_ms == first.ts_ms == brake.occurred_at_ms and brake.end_ms == end.ts_ms
    assert brake.duration_s == 3.0
    assert brake.speed_at_start_kmh == 40.0  # the speed of the sample before it
    summary = of_type(events, "trip_ended")[0].summary
    assert (summary.harsh_braking_count, summary.harsh_braking_high_count, summary.harsh_braking_low_count) == (1, 0, 0)
    assert harsh(events, "acceleration") == []


@pytest.mark.parametrize(("mps2", "grade"), [(2.7, "low"), (3.5, "medium"), (4.4, "high")])
def test_a_brake_is_graded_by_its_peak_and_only_medium_and_high_count_as_harsh(mps2, grade):
    d = driving(speed_kmh=90.0)
    constant(d, -mps2, 5)
    ramp(d, 50.0)
    finish(d)
    _, events = run(d)
    brakes = harsh(events, "braking")
    assert [b.grade for b in brakes] == [grade]
    assert brakes[0].peak_mps2 == pytest.approx(mps2, abs=0.01)
    s = of_type(events, "trip_ended")[0].summary
    counts = (s.harsh_braking_low_count, s.harsh_braking_count - s.harsh_braking_high_count, s.harsh_braking_high_count)
    assert counts == {"low": (1, 0, 0), "medium": (0, 1, 0), "high": (0, 0, 1)}[grade]


def test_hysteresis_keeps_a_brake_hovering_near_the_threshold_as_one_episode():
    d = driving(speed_kmh=100.0)
    for a in (-3.0, -3.0, -2.2, -2.2, -2.2, -3.2, -3.2, -1.0, -1.0):
        d.add(speed_kmh=d.speed_kmh + a * 3.6)
    finish(d)
    _, events = run(d)
    brakes = harsh(events, "braking")
    assert len(brakes) == 1 and brakes[0].peak_mps2 == pytest.approx(3.2)


def test_dropping_below_the_exit_threshold_ends_the_episode():
    d = driving(speed_kmh=100.0)
    for a in (-3.5, -3.5, -0.5, -0.5, -3.6, -3.6, 0.0, 0.0):
        d.add(speed_kmh=d.speed_kmh + a * 3.6)
    finish(d)
    _, events = run(d)
    assert [round(b.peak_mps2, 2) for b in harsh(events, "braking")] == [3.5, 3.6]


def test_harsh_events_are_gated_off_when_samples_are_too_far_apart():
    d = driving()
    for speed in (30.0, 10.0, 0.0):
        d.add(dt_s=5.0, speed_kmh=speed, accel_ms2=-4.0)
    finish(d)
    _, events = run(d)
    assert harsh(events, "braking") == []


def test_harsh_events_are_gated_off_under_the_speed_floor():
    d = driving(speed_kmh=9.0)
    for speed in (4.0, 0.0, 0.0, 9.0, 9.0):
        d.add(speed_kmh=speed, accel_ms2=-4.0)
    finish(d)
    _, events = run(d)
    assert harsh(events, "braking") == [] and len(harsh(events, "acceleration")) <= 1  # the finish ramp
    assert all(e.start_ms > d.readings[40].ts_ms for e in harsh(events, "acceleration"))


def test_a_hard_stop_from_low_speed_is_a_brake_although_it_ends_under_the_speed_floor():
    d = driving(speed_kmh=25.0)
    d.add(speed_kmh=27.0)
    d.add(speed_kmh=8.0)
    d.add(speed_kmh=0.0)
    d.stop(5)
    finish(d)
    _, events = run(d)
    brakes = harsh(events, "braking")
    # windows: (8-25)/2 s = -2.36 (under the low grade), (0-27)/2 s = -3.75 spanning a 27 km/h sample
    assert len(brakes) == 1 and brakes[0].peak_mps2 == pytest.approx(27 / 3.6 / 2) and brakes[0].grade == "medium"


def test_harsh_acceleration_from_a_standstill_is_detected():
    d = driving(seconds=30)
    ramp(d, 0.0)
    d.stop(5)
    d.add(speed_kmh=14.0)
    first = d.add(speed_kmh=28.0)
    d.add(speed_kmh=38.0)
    d.add(speed_kmh=40.0)
    finish(d)
    _, events = run(d)
    accels = harsh(events, "acceleration")
    assert len(accels) == 1
    # windows: (14-0)/2 s = 1.94, (28-0)/2 s = 3.89, (38-14)/2 s = 3.33, (40-28)/2 s = 1.67
    assert accels[0].peak_mps2 == pytest.approx(28 / 3.6 / 2) and accels[0].grade == "medium"
    assert accels[0].start_ms == first.ts_ms and accels[0].speed_at_start_kmh == 14.0
    assert accels[0].duration_s == 2.0


def test_a_phone_accelerometer_on_another_axis_neither_makes_nor_hides_a_brake():
    # A phone mounted backwards reads a brake as acceleration; one lying sideways reads turns. When the
    # GNSS speed is known, the longitudinal estimate comes from it alone.
    d = driving()
    d.cruise(10, 50.0, accel_ms2=-4.0)  # vibration / a turn on the phone's axis: the speed is steady
    constant(d, -4.0, 3, accel_ms2=+4.0)
    d.cruise(3, d.speed_kmh)
    finish(d)
    _, events = run(d)
    assert [b.grade for b in harsh(events, "braking")] == ["high"]
    assert harsh(events, "acceleration") == []


def test_without_gnss_speed_the_device_accelerometer_is_used():
    d = Drive()
    d.ignition_on()
    for _ in range(5):
        d.add(speed_kmh=d.speed_kmh + 5.0, unknown=("speed_kmh",))
    d.cruise(20, d.speed_kmh, unknown=("speed_kmh",))
    constant(d, -4.2, 3, accel_ms2=-4.2, unknown=("speed_kmh",))
    d.cruise(5, d.speed_kmh, unknown=("speed_kmh",))
    _, events = run(d)
    brakes = harsh(events, "braking")
    assert len(brakes) == 1 and brakes[0].peak_mps2 == pytest.approx(4.2) and brakes[0].grade == "high"


def test_without_speed_or_accelerometer_the_positions_tell_a_brake():
    d = Drive()
    d.ignition_on()
    none = ("speed_kmh", "accel_ms2")
    for _ in range(12):
        d.add(speed_kmh=d.speed_kmh + 5.0, unknown=none)
    d.cruise(20, d.speed_kmh, unknown=none)
    constant(d, -4.0, 4, unknown=none)
    d.cruise(10, d.speed_kmh, unknown=none)
    _, events = run(d)
    brakes = harsh(events, "braking")
    assert len(brakes) == 1 and brakes[0].peak_mps2 == pytest.approx(4.0, abs=0.05)


def test_a_sample_without_speed_inside_a_brake_does_not_split_it():
    d = driving(speed_kmh=90.0)
    constant(d, -3.6, 2)
    constant(d, -3.6, 1, unknown=("speed_kmh",))
    constant(d, -3.6, 3)
    d.cruise(3, d.speed_kmh)
    finish(d)
    _, events = run(d)
    brakes = harsh(events, "braking")
    # opens on the 2nd sample (the first window is half in the cruise), closes on the first steady one
    assert len(brakes) == 1 and brakes[0].duration_s == 5.0 and brakes[0].peak_mps2 == pytest.approx(3.6)


# --- cornering ------------------------------------------------------------------------------------


def test_heading_delta_wraps_around_north():
    assert heading_delta_deg(359.0, 1.0) == 2.0
    assert heading_delta_deg(1.0, 359.0) == -2.0
    assert heading_delta_deg(90.0, 270.0) == -180.0
    assert lateral_accel_from_heading_mps2(359.0, 1.0, 1.0, 36.0) == pytest.approx(math.radians(2.0) * 10.0)
    assert bearing_deg(48.0, 2.0, 48.001, 2.0) == 0.0
    assert bearing_deg(48.0, 2.0, 48.0, 1.999) == pytest.approx(270.0, abs=1e-3)


def test_cornering_is_derived_from_heading_rate_across_the_wrap():
    d = driving(speed_kmh=60.0, heading=340.0)
    first = d.add(speed_kmh=60.0, heading=355.0)
    for h in (10.0, 25.0, 40.0):
        d.add(speed_kmh=60.0, heading=h)
    d.cruise(5, 60.0, heading=40.0)
    finish(d)
    _, events = run(d)
    corners = harsh(events, "cornering")
    assert len(corners) == 1
    corner = corners[0]
    assert isinstance(corner, HarshCorneringDetected)
    assert corner.lateral_source == "heading"
    assert corner.peak_mps2 == pytest.approx(math.radians(15.0) * 60.0 / 3.6)
    assert corner.grade == "medium"
    assert corner.start_ms == first.ts_ms and corner.duration_s == 4.0


def test_a_slow_drift_across_north_is_not_a_corner():
    d = driving(speed_kmh=60.0, heading=357.0)
    for h in (358.0, 359.0, 0.0, 1.0, 2.0, 3.0):
        d.add(speed_kmh=60.0, heading=h)
    finish(d)
    _, events = run(d)
    assert harsh(events, "cornering") == []


@pytest.mark.parametrize("errors", [(25.0,), (-40.0,), (20.0, 35.0), (15.0, 0.0, -30.0)])
def test_gross_course_errors_at_motorway_speed_are_not_corners(errors):
    # Issue 12: one fix's course off by tens of degrees at 120 km/h reads as 10+ m/s² of lateral
    # acceleration, in and out. A turn keeps turning the same way; these spikes reverse.
    d = driving(speed_kmh=120.0)
    for e in errors:
        d.add(speed_kmh=120.0, heading_error_deg=e)
    d.cruise(10, 120.0)
    finish(d)
    _, events = run(d)
    assert harsh(events, "cornering") == []


def test_a_two_second_turn_counts_when_the_positions_confirm_it():
    d = driving(speed_kmh=30.0, heading=0.0)
    first = d.add(speed_kmh=30.0, heading=30.0)
    d.add(speed_kmh=30.0, heading=60.0)
    d.cruise(5, 30.0, heading=60.0)
    finish(d)
    _, events = run(d)
    corners = harsh(events, "cornering")
    assert len(corners) == 1 and corners[0].start_ms == first.ts_ms
    assert corners[0].peak_mps2 == pytest.approx(math.radians(30.0) * 30.0 / 3.6)


def test_a_two_second_swing_of_the_course_alone_is_not_a_corner():
    # Same course change as above, but the positions go straight on: only the reported course moved.
    d = driving(speed_kmh=30.0, heading=0.0)
    d.add(speed_kmh=30.0, heading_error_deg=30.0)
    d.add(speed_kmh=30.0, heading_error_deg=60.0)
    d.cruise(5, 30.0, heading_error_deg=60.0)
    finish(d)
    _, events = run(d)
    assert harsh(events, "cornering") == []


def test_without_a_reported_heading_the_bearing_between_positions_is_used():
    d = driving(speed_kmh=30.0, heading=0.0)
    for h in (25.0, 50.0, 75.0, 100.0):
        d.add(speed_kmh=30.0, heading=h, unknown=("heading",))
    d.cruise(5, 30.0, heading=100.0, unknown=("heading",))
    finish(d)
    _, events = run(d)
    corners = harsh(events, "cornering")
    assert len(corners) == 1 and corners[0].lateral_source == "heading"
    assert corners[0].peak_mps2 == pytest.approx(math.radians(25.0) * 30.0 / 3.6, rel=0.02)


def test_cornering_uses_the_device_lateral_acceleration_when_present():
    d = driving(speed_kmh=60.0)
    d.add(speed_kmh=60.0, lateral_ms2=-4.6)
    d.add(speed_kmh=60.0, lateral_ms2=-3.0)
    d.add(speed_kmh=60.0, lateral_ms2=0.5)
    finish(d)
    _, events = run(d)
    corners = harsh(events, "cornering")
    assert len(corners) == 1
    assert corners[0].lateral_source == "device" and corners[0].peak_mps2 == 4.6 and corners[0].grade == "high"
    assert corners[0].duration_s == 2.0


def test_an_s_bend_is_two_corners():
    d = driving(speed_kmh=40.0)
    for lateral in (4.0, 3.8, -4.0, -3.9, 0.2):
        d.add(speed_kmh=40.0, lateral_ms2=lateral)
    finish(d)
    _, events = run(d)
    assert [round(c.peak_mps2, 1) for c in harsh(events, "cornering")] == [4.0, 4.0]


# --- speeding -------------------------------------------------------------------------------------


def test_speeding_episode_reports_the_worst_band_and_accumulates_seconds_per_band():
    d = driving()
    start = d.cruise(20, 66.0, limit_kmh=50.0)[0]  # +16: moderate
    d.cruise(20, 82.0, limit_kmh=50.0)  # +32: severe
    d.cruise(20, 50.0, limit_kmh=50.0)
    finish(d)
    _, events = run(d)
    speeding = of_type(events, "speeding_detected")
    assert len(speeding) == 1
    ep = speeding[0]
    assert isinstance(ep, SpeedingDetected)
    assert (ep.band, ep.duration_s, ep.max_excess_kmh, ep.limit_kmh) == ("severe", 40.0, 32.0, 50.0)
    assert (ep.moderate_s, ep.severe_s) == (20.0, 20.0)
    assert ep.start_ms == start.ts_ms
    summary = of_type(events, "trip_ended")[0].summary
    assert (summary.speeding_moderate_s, summary.speeding_severe_s) == (20.0, 20.0)


@pytest.mark.parametrize(
    ("limit", "speed", "band"),
    [
        (50.0, 64.0, None),
        (50.0, 65.0, "moderate"),
        (50.0, 80.0, "severe"),
        (85.0, 100.0, "moderate"),
        (100.0, 118.0, None),
        (100.0, 120.0, "moderate"),
        (100.0, 139.0, "moderate"),
        (100.0, 140.0, "severe"),
    ],
)
def test_speeding_bands_depend_on_the_limit(limit, speed, band):
    d = driving()
    d.cruise(30, speed, limit_kmh=limit)
    d.cruise(5, limit - 10.0, limit_kmh=limit)
    finish(d)
    _, events = run(d)
    found = [e.band for e in of_type(events, "speeding_detected")]
    assert found == ([] if band is None else [band])


def test_a_speeding_burst_shorter_than_the_minimum_is_ignored():
    d = driving()
    d.cruise(5, 75.0, limit_kmh=50.0)
    d.cruise(10, 50.0, limit_kmh=50.0)
    finish(d)
    _, events = run(d)
    assert of_type(events, "speeding_detected") == []
    assert of_type(events, "trip_ended")[0].summary.speeding_moderate_s == 0.0


# --- night ----------------------------------------------------------------------------------------


def night_trip(start_iso: str, timezone: str) -> float:
    d = Drive(t0_ms=ms(start_iso) - 1000)
    d.ignition_on()
    d.cruise(1199, 50.0)
    d.ignition_off()  # 1200 s after ignition_on
    _, events = run(d, timezone)
    return of_type(events, "trip_ended")[0].summary.night_s


def test_night_seconds_across_the_start_of_the_night_window():
    assert night_trip("2025-01-15T22:50:00+00:00", "UTC") == 600.0


def test_night_seconds_across_the_end_of_the_night_window():
    assert night_trip("2025-01-16T04:50:00+00:00", "UTC") == 600.0


def test_night_is_counted_in_the_drivers_local_time():
    # 21:50–22:10 UTC is 22:50–23:10 in Paris (UTC+1 in January).
    assert night_trip("2025-01-15T21:50:00+00:00", "Europe/Paris") == 600.0
    assert night_trip("2025-01-15T21:50:00+00:00", "UTC") == 0.0
    # 03:50–04:10 UTC is 23:50–00:10 in New York (UTC−4 in July): across local midnight.
    assert night_trip("2025-07-16T03:50:00+00:00", "America/New_York") == 1200.0


def test_the_night_window_follows_daylight_saving_changes():
    day_start = ms("2025-03-08T12:00:00-05:00")
    day_end = ms("2025-03-09T12:00:00-04:00")
    # 23:00 EST → 05:00 EDT is only 5 real hours: clocks jump from 02:00 to 03:00.
    assert night_seconds(day_start, day_end, "America/New_York", 23, 5) == 5 * 3600.0
    assert is_night(ms("2025-03-09T04:59:59-04:00"), "America/New_York", 23, 5)
    assert not is_night(ms("2025-03-09T05:00:00-04:00"), "America/New_York", 23, 5)


def test_night_seconds_is_exact_at_the_boundaries():
    t = ms("2025-01-15T23:00:00+00:00")
    assert night_seconds(t - 1000, t, "UTC", 23, 5) == 0.0
    assert night_seconds(t, t + 1000, "UTC", 23, 5) == 1.0
    assert night_seconds(t - 500, t + 500, "UTC", 23, 5) == 0.5


# --- phone use ------------------------------------------------------------------------------------


def test_phone_use_while_moving_is_one_episode_and_counts_into_the_trip():
    d = driving()
    d.cruise(12, 50.0, kind=ReadingType.PHONE_USE)
    d.cruise(5, 50.0)
    finish(d)
    _, events = run(d)
    uses = of_type(events, "phone_use_detected")
    assert len(uses) == 1 and uses[0].duration_s == 12.0
    assert of_type(events, "trip_ended")[0].summary.phone_use_moving_s == 12.0


def test_phone_use_under_10_kmh_is_ignored():
    d = driving()
    d.cruise(5, 0.0)
    d.cruise(30, 8.0, kind=ReadingType.PHONE_USE)
    d.cruise(10, 10.0, kind=ReadingType.PHONE_USE)  # "above 10 km/h": exactly 10 does not count
    finish(d)
    _, events = run(d)
    assert of_type(events, "phone_use_detected") == []
    assert of_type(events, "trip_ended")[0].summary.phone_use_moving_s == 0.0


# --- crash ----------------------------------------------------------------------------------------


def test_a_crash_carries_pre_and_post_buffers():
    d = driving(seconds=60)
    impact = d.add(speed_kmh=50.0, accel_ms2=-8.0, kind=ReadingType.CRASH)
    after = d.stop(40)
    d.ignition_off()
    _, events = run(d)
    crashes = of_type(events, "crash_detected")
    assert len(crashes) == 1
    crash = crashes[0]
    assert isinstance(crash, CrashDetected)
    assert crash.trigger == "crash_reading" and crash.occurred_at_ms == impact.ts_ms
    # 30 s either side (issue 16's first notice of loss): the 30 readings before, the 30 after
    assert [s.ts_ms for s in crash.pre] == [impact.ts_ms - 1000 * k for k in range(30, 0, -1)]
    assert [s.ts_ms for s in crash.post] == [r.ts_ms for r in after[:30]]
    assert crash.trip_id == of_type(events, "trip_started")[0].trip_id
    assert of_type(events, "trip_ended")[0].summary.crash_count == 1


def test_an_acceleration_above_2_5_g_is_a_crash_emitted_at_trip_end_if_sooner():
    d = driving(seconds=60)
    d.add(speed_kmh=20.0, accel_ms2=-30.0)
    d.add(speed_kmh=0.0, accel_ms2=-12.0)
    d.ignition_off()
    _, events = run(d)
    crash = of_type(events, "crash_detected")[0]
    assert crash.trigger == "acceleration"
    assert crash.peak_g == pytest.approx(30.0 / 9.80665)
    assert len(crash.post) == 2
    assert events.index(crash) < events.index(of_type(events, "trip_ended")[0])


def test_a_crash_outside_a_trip_has_no_trip_and_no_pre_buffer():
    d = Drive()
    d.stop(20)
    d.add(speed_kmh=0.0, kind=ReadingType.CRASH)
    d.stop(32)
    _, events = run(d)
    crash = of_type(events, "crash_detected")[0]
    assert crash.trip_id is None and crash.pre == [] and len(crash.post) == 30


def test_triggers_inside_the_post_window_join_the_same_crash():
    d = driving(seconds=30)
    d.add(speed_kmh=30.0, accel_ms2=-26.0)
    d.add(speed_kmh=0.0, accel_ms2=-40.0)
    d.stop(40)
    _, events = run(d)
    crashes = of_type(events, "crash_detected")
    assert len(crashes) == 1 and crashes[0].peak_g == pytest.approx(40.0 / 9.80665)


# --- fields the device did not know ---------------------------------------------------------------


def test_without_speed_distance_moving_time_speeding_and_phone_use_come_from_positions():
    d = Drive()
    d.ignition_on()
    none = ("speed_kmh", "accel_ms2", "heading")
    for _ in range(14):
        d.add(speed_kmh=d.speed_kmh + 5.0, unknown=none, limit_kmh=50.0)  # up to 70 km/h: +20 over 50
    d.cruise(60, 70.0, unknown=none, limit_kmh=50.0)
    d.cruise(20, 70.0, unknown=none, kind=ReadingType.PHONE_USE)
    ramp(d, 0.0, unknown=none)
    d.stop(5)
    d.ignition_off()
    _, events = run(d)
    summary = of_type(events, "trip_ended")[0].summary
    # 5…70 km/h up, 80 s at 70, 65…0 down, one second each
    assert summary.distance_m == pytest.approx((525 + 80 * 70 + 455) / 3.6, rel=0.01)
    assert summary.max_speed_kmh == pytest.approx(70.0, abs=0.5)
    assert summary.idle_s >= 5.0
    assert 55.0 <= summary.speeding_moderate_s <= 75.0
    assert summary.phone_use_moving_s == pytest.approx(20.0, abs=1.0)


def test_a_trip_starts_by_motion_from_positions_when_the_device_sends_no_speed():
    d = Drive()
    d.stop(3)
    for _ in range(90):
        d.add(speed_kmh=30.0, unknown=("speed_kmh",))
    _, events = run(d)
    started = of_type(events, "trip_started")
    assert len(started) == 1 and started[0].start_reason == "motion"


def test_a_crash_reading_without_acceleration_or_speed_is_a_crash_with_unknown_values_kept():
    d = driving(seconds=20)
    impact = d.add(speed_kmh=50.0, kind=ReadingType.CRASH, unknown=("speed_kmh", "accel_ms2", "heading"))
    d.stop(32)
    _, events = run(d)
    crash = of_type(events, "crash_detected")[0]
    assert crash.trigger == "crash_reading" and crash.occurred_at_ms == impact.ts_ms
    assert crash.speed_kmh is None and crash.peak_g == 0.0
    assert crash.post[0].speed_kmh == 0.0 and crash.pre[-1].accel_ms2 == 0.0
