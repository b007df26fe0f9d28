"""Driver features from trip summaries: definitions, zero exposure, and a stable hash."""

from __future__ import annotations

import math
import uuid

import msgspec
import numpy as np
import pytest

from domain.features import (
    FEATURE_NAMES,
    FEATURE_SPEC_VERSION,
    DriverFeatures,
    driver_features,
    feature_hash,
    feature_matrix,
    trip_features,
)
from domain.trip_summary import TripSummary


def _trip(n: int, **kw) -> TripSummary:
    base = {
        "trip_id": uuid.UUID(int=n),
        "driver_id": "driver0001",
        "start_ms": 1_767_225_600_000 + n * 86_400_000,
        "end_ms": 1_767_225_600_000 + n * 86_400_000 + int(kw.get("duration_s", 0) * 1000),
        "avg_speed_kmh": 0.0,
        "max_speed_kmh": 0.0,
    }
    return TripSummary(**(base | kw))


TRIPS = (
    _trip(1, distance_m=50_000.0, duration_s=3_600.0, idle_s=600.0, max_speed_kmh=95.0, avg_speed_kmh=50.0,
          harsh_braking_count=2, harsh_acceleration_count=1, speeding_moderate_s=300.0, speeding_severe_s=60.0,
          night_s=1_800.0, phone_use_moving_s=150.0),
    _trip(2, distance_m=150_000.0, duration_s=7_200.0, max_speed_kmh=130.0, avg_speed_kmh=75.0,
          harsh_braking_count=2, harsh_cornering_count=3, speeding_moderate_s=720.0, crash_count=1),
)


def test_rates_per_100km_and_shares_on_a_hand_made_trip_list():
    f = driver_features(TRIPS, window_days=30)
    assert f.trip_count == 2 and f.exposure_km == 200.0
    assert f.total_hours == 3.0
    assert math.isclose(f.annual_km, 200 * 365 / 30)
    assert math.isclose(f.avg_speed_kmh, 200 / (10_200 / 3600))  # over moving time (duration − idle)
    assert (f.harsh_braking_per_100km, f.harsh_acceleration_per_100km, f.harsh_cornering_per_100km) == (2.0, 0.5, 1.5)
    assert f.crash_count == 1
    assert math.isclose(f.night_share, 1_800 / 10_800)
    assert math.isclose(f.speeding_moderate_share, 1_020 / 10_200)
    assert math.isclose(f.speeding_severe_share, 60 / 10_200)
    assert math.isclose(f.phone_use_share, 150 / 10_200)
    assert math.isclose(f.idle_share, 600 / 10_800)


def test_zero_trips_give_a_valid_zero_exposure_vector():
    f = driver_features([], window_days=90)
    v = f.to_vector()
    assert v.shape == (len(FEATURE_NAMES),) and v.dtype == np.float64
    assert np.all(v == 0.0) and np.all(np.isfinite(v))
    assert len(f.feature_hash()) == 64


def test_zero_distance_trip_gives_zero_rates_not_an_error():
    idle_only = _trip(3, distance_m=0.0, duration_s=120.0, idle_s=120.0, harsh_braking_count=1)
    f = driver_features([idle_only], window_days=1)
    assert f.harsh_braking_per_100km == 0.0 and f.avg_speed_kmh == 0.0 and f.speeding_moderate_share == 0.0
    assert f.idle_share == 1.0


def test_vector_follows_feature_names():
    f = driver_features(TRIPS, window_days=30)
    assert f.to_vector().tolist() == [getattr(f, name) for name in FEATURE_NAMES]
    fields = [fld.name for fld in msgspec.structs.fields(DriverFeatures) if fld.name != "window_days"]
    assert list(FEATURE_NAMES) == fields
    m = feature_matrix([f, driver_features([], window_days=30)])
    assert m.shape == (2, len(FEATURE_NAMES)) and m[0].tolist() == f.to_vector().tolist()


def test_hash_is_stable_and_independent_of_trip_order():
    f = driver_features(TRIPS, window_days=30)
    assert f.feature_hash() == driver_features(TRIPS[::-1], window_days=30).feature_hash()
    # Pinned: a change in names, order, rounding or values must come with a new FEATURE_SPEC_VERSION.
    assert FEATURE_SPEC_VERSION == "driver-features/1"
    assert f.feature_hash() == "e2d60cd60952c48e93a203d22918079a8990f2ce1403375e578856bdf1066f52"


def test_hash_ignores_noise_below_the_rounding_and_sees_real_changes():
    v = driver_features(TRIPS, window_days=30).to_vector()
    assert feature_hash(v) == feature_hash(v + 1e-9)
    assert feature_hash(np.zeros_like(v)) == feature_hash(-np.zeros_like(v))
    changed = v.copy()
    changed[FEATURE_NAMES.index("night_share")] += 1e-3
    assert feature_hash(changed) != feature_hash(v)
    with pytest.raises(ValueError, match="features"):
        feature_hash(v[:-1])


def test_trip_features_use_the_same_definitions():
    t = trip_features(TRIPS[0])
    assert t.distance_km == 50.0 and t.moving_h == 3000 / 3600
    assert t.harsh_braking_per_100km == 4.0 and t.harsh_acceleration_per_100km == 2.0
    assert math.isclose(t.speeding_moderate_share, 300 / 3000) and math.isclose(t.night_share, 0.5)
    assert t.max_speed_kmh == 95.0


def test_bad_window_or_mixed_drivers_are_rejected():
    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="window_days"):
            driver_features(TRIPS, window_days=bad)
    other = msgspec.structs.replace(TRIPS[1], driver_id="driver0002")
    with pytest.raises(ValueError, match="one driver"):
        driver_features([TRIPS[0], other], window_days=30)


def test_low_grade_harsh_episodes_do_not_count_and_high_ones_count_like_medium():
    graded = _trip(1, distance_m=100_000.0, duration_s=3_600.0, harsh_braking_count=2, harsh_braking_high_count=1,
                   harsh_braking_low_count=40, harsh_cornering_low_count=9, harsh_acceleration_low_count=7)
    f = driver_features([graded], window_days=30)
    assert f.harsh_braking_per_100km == 2.0  # 1 medium + 1 high per 100 km; the 40 low ones weigh nothing
    assert f.harsh_cornering_per_100km == 0.0 and f.harsh_acceleration_per_100km == 0.0
    ungraded = _trip(1, distance_m=100_000.0, duration_s=3_600.0, harsh_braking_count=2)
    assert driver_features([ungraded], window_days=30).to_vector().tolist() == f.to_vector().tolist()
