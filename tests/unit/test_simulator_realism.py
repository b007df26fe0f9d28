"""The simulator's phone realism mode and its ground-truth episodes (docs/SIMULATOR.md §11)."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest

from domain.readings import ReadingType
from domain.simulator import Population, simulate_all, to_readings, to_wire_json
from domain.simulator.realism import PHONE, RealismConfig
from domain.simulator.trips import IGNITION_OFF, IGNITION_ON

START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
DAY_S = 86_400


@pytest.fixture(scope="module")
def population() -> Population:
    return Population.generate(30, seed=7)


@pytest.fixture(scope="module")
def exact(population):
    episodes: list = []
    rows = simulate_all(population, START_MS, DAY_S, seed=7, episodes=episodes)
    return rows, episodes


@pytest.fixture(scope="module")
def phone(population):
    episodes: list = []
    rows = simulate_all(population, START_MS, DAY_S, seed=7, realism=PHONE, episodes=episodes)
    return rows, episodes


def _by_trip(rows: np.ndarray) -> dict[tuple[int, int], np.ndarray]:
    rows = rows[np.lexsort((rows["ts_ms"], rows["trip_no"], rows["driver_no"]))]
    key = rows["driver_no"].astype(np.int64) << 32 | rows["trip_no"]
    cuts = np.flatnonzero(np.diff(key)) + 1
    return {(int(t["driver_no"][0]), int(t["trip_no"][0])): t for t in np.split(rows, cuts)}


def test_default_stream_is_byte_identical_to_the_stream_before_realism_mode_existed():
    # Hashes of this exact run taken on the code before realism mode was added: other tests and stored
    # runs depend on the default stream, so the realism mode must not perturb it.
    rows = simulate_all(Population.generate(6, seed=3), START_MS, DAY_S, seed=3)
    assert hashlib.sha256(rows.tobytes()).hexdigest() == (
        "38a1c1a716244971ce5d7af46919d0bba20f69e98b41785133dda2d32868ac10")
    assert hashlib.sha256(b"".join(to_wire_json(rows))).hexdigest() == (
        "74983bcc34428409117dfd060732451d116b48f73c240f60670ff4d963df9fdb")


def test_realism_mode_is_deterministic_and_independent_of_batch_size(population, phone):
    rows, _ = phone
    again = simulate_all(population, START_MS, DAY_S, seed=7, realism=PHONE, batch_size=777)
    assert again.tobytes() == rows.tobytes()


def test_every_planned_harsh_manoeuvre_is_a_true_episode_and_shows_in_the_exact_readings(exact):
    rows, episodes = exact
    kinds = {e.kind for e in episodes}
    assert kinds == {"braking", "acceleration", "cornering"} and all(e.observed for e in episodes)
    trips = _by_trip(rows)
    for e in episodes:
        trip = trips[(e.driver_no, e.trip_no)]
        inside = trip[(trip["ts_ms"] >= e.start_ms) & (trip["ts_ms"] <= e.end_ms)]
        assert e.start_ms < e.end_ms and len(inside) >= 1
        if e.kind == "braking":
            assert 3.8 <= e.peak_mps2 <= 6.5 and inside["accel_ms2"].min() < -3.0
        elif e.kind == "acceleration":
            assert 3.6 <= e.peak_mps2 <= 5.0 and inside["accel_ms2"].max() > 3.0
        else:
            assert 4.0 <= e.peak_mps2 <= 5.5
            turned = abs((trip["heading"][trip["ts_ms"] <= e.end_ms + 1000][-1]
                          - trip["heading"][trip["ts_ms"] <= e.start_ms][-1] + 180) % 360 - 180)
            assert turned > 45.0


def test_realism_mode_has_the_same_trips_and_the_same_true_episodes_as_the_exact_stream(exact, phone):
    def spans(episodes):
        return {(e.driver_no, e.kind, e.start_ms) for e in episodes}

    assert spans(phone[1]) == spans(exact[1])
    assert set(_by_trip(phone[0])) == set(_by_trip(exact[0]))


def test_gnss_speed_is_noisy_sometimes_unknown_and_heading_unknown_near_standstill(exact, phone):
    exact_trips, phone_trips = _by_trip(exact[0]), _by_trip(phone[0])
    errors, missing = [], 0
    for key, trip in phone_trips.items():
        truth = exact_trips[key]
        same = np.isin(truth["ts_ms"], trip["ts_ms"])
        err = trip["speed_kmh"] - truth["speed_kmh"][same]
        moving = truth["speed_kmh"][same] > 20
        errors.append(err[moving & ~np.isnan(err)] / 3.6)
        missing += int(np.isnan(trip["speed_kmh"]).sum())
        slow = truth["speed_kmh"][same] < PHONE.heading_min_speed_mps * 3.6
        assert np.isnan(trip["heading"][slow]).all()
    sd = float(np.concatenate(errors).std())
    assert 0.1 <= sd <= 0.3  # the per-trip σ is drawn in [0.1, 0.3] m/s
    assert 0.005 < missing / len(phone[0]) < 0.02
    assert np.isnan(phone[0]["lateral_accel_ms2"]).all()


def test_heading_error_grows_as_speed_falls(exact, phone):
    exact_trips, phone_trips = _by_trip(exact[0]), _by_trip(phone[0])
    slow, fast = [], []
    for key, trip in phone_trips.items():
        truth = exact_trips[key]
        same = np.isin(truth["ts_ms"], trip["ts_ms"])
        err = np.abs((trip["heading"] - truth["heading"][same] + 180) % 360 - 180)
        speed = truth["speed_kmh"][same]
        slow.append(err[(speed > 3) & (speed < 10)])
        fast.append(err[speed > 90])
    assert np.nanmedian(np.concatenate(slow)) > 5 * np.nanmedian(np.concatenate(fast))


def test_phone_acceleration_is_a_one_second_mean_along_a_random_mounting_axis(exact, phone):
    exact_trips, phone_trips = _by_trip(exact[0]), _by_trip(phone[0])
    gains = []
    for key, trip in phone_trips.items():
        truth = exact_trips[key]
        same = np.isin(truth["ts_ms"], trip["ts_ms"])
        mean_accel = np.diff(truth["speed_kmh"] / 3.6, prepend=0.0)[same]
        device = trip["accel_ms2"]
        ok = ~np.isnan(device) & (np.abs(mean_accel) > 0.5) & (trip["type"] != 4)
        if ok.sum() > 30:
            gains.append(float(np.polyfit(mean_accel[ok], device[ok], 1)[0]))
    gains = np.array(gains)
    # cos(ψ) of a uniform mounting yaw: phones facing forward, backward and sideways all occur.
    assert gains.min() < -0.7 and gains.max() > 0.7 and (np.abs(gains) < 0.5).any()
    assert np.isnan(phone[0]["accel_ms2"]).any()  # some phones send no acceleration at all


def test_outages_drop_readings_and_some_recordings_stop_before_ignition_off(exact, phone):
    assert len(phone[0]) < len(exact[0])
    trips = _by_trip(phone[0])
    assert all(t["type"][0] == IGNITION_ON for t in trips.values())
    cut = [t for t in trips.values() if t["type"][-1] != IGNITION_OFF]
    assert 0 < len(cut) < 0.2 * len(trips)
    gaps = np.concatenate([np.diff(t["ts_ms"]) for t in trips.values()])
    assert gaps.max() >= 5_000 and (gaps == 1_000).mean() > 0.97
    assert sum(not e.observed for e in phone[1]) < 0.1 * len(phone[1])


def test_positions_wander_and_sometimes_jump(exact, phone):
    exact_trips, phone_trips = _by_trip(exact[0]), _by_trip(phone[0])
    offsets = []
    for key, trip in phone_trips.items():
        truth = exact_trips[key]
        same = np.isin(truth["ts_ms"], trip["ts_ms"])
        north = (trip["lat"] - truth["lat"][same]) * 111_195.0
        east = (trip["lon"] - truth["lon"][same]) * 111_195.0 * math.cos(math.radians(float(truth["lat"][0])))
        offsets.append(np.hypot(north, east))
    offsets = np.concatenate(offsets)
    assert 1.5 < np.median(offsets) < 8.0 and offsets.max() > 15.0


def test_unknown_values_become_none_in_readings_and_null_on_the_wire(phone):
    rows = phone[0][:5_000]
    readings = to_readings(rows)
    assert any(r.speed_kmh is None for r in readings) and any(r.heading is None for r in readings)
    assert all(r.lateral_accel_ms2 is None for r in readings)
    wire = to_wire_json(rows)
    i = next(i for i, r in enumerate(readings) if r.heading is None)
    assert b'"heading":null' in wire[i]
    assert readings[0].type in tuple(ReadingType)


def test_a_config_without_noise_keeps_the_exact_kinematics_except_acceleration(population, exact):
    quiet = RealismConfig(speed_sigma_mps=(0.0, 0.0), speed_missing_prob=0.0, heading_outlier_prob=0.0,
                          position_sigma_m=(0.0, 0.0), jumps_per_h=0.0, accel_missing_driver_prob=0.0,
                          outages_per_h=0.0, cut_prob=0.0, heading_min_speed_mps=0.0)
    rows = simulate_all(population, START_MS, DAY_S, seed=7, realism=quiet)
    assert len(rows) == len(exact[0])
    assert np.array_equal(rows["speed_kmh"], exact[0]["speed_kmh"])
    assert np.allclose(rows["lat"], exact[0]["lat"], atol=2e-6)
