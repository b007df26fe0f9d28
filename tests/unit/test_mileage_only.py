"""mileage_only in the pipeline (docs/PRIVACY.md §3): stripped readings, distance from speed × time, detectors
without positions, the COPY encoder's NULL positions, the reloaded set of stripped drivers, mileage-only scoring."""

from __future__ import annotations

import asyncio
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.batches import ReadingColumns
from domain.detectors.motion import travelled_m
from domain.driver_state import DriverState
from domain.events import CrashDetected, TripEnded, TripStarted, decode_event, encode_event
from domain.privacy import PrivacyState, strip_drivers, strip_positions, stripped_drivers
from domain.readings import ReadingType
from domain.risk_assessment import MILEAGE_ONLY_CREDIBILITY, ScoreRequest
from domain.risk_model import RiskPredictor, TrainingParams
from domain.risk_model.dataset import DatasetSpec, build_dataset
from domain.risk_model.training import train
from domain.rules import TripRules
from domain.trip_machine import step_many
from domain.trip_summary import MILEAGE_ONLY_FLAG
from storage.files.model_artifacts import content_version, serialize
from storage.postgres.copy_binary import encode_readings
from tests.unit.domain_helpers import Drive, of_type
from tests.unit.test_copy_binary import parse_copy, reading
from usecases.ports.clock import FakeClock
from usecases.stripped_drivers import StrippedDrivers

RULES = TripRules(reorder_window_ms=0)


def _fold(readings):
    _, events = step_many(DriverState.initial("drv-1", "UTC"), readings, RULES)
    return events


@given(st.integers(min_value=0, max_value=500), st.booleans())
def test_a_stripped_reading_never_carries_a_position_and_keeps_distance_and_time(i, with_data):
    r = reading(i, data={"cell": "x"} if with_data else None)
    s = strip_positions(r)
    assert (s.lat, s.lon, s.heading, s.speed_limit_kmh, s.data) == (None, None, None, None, None)
    assert (s.event_id, s.driver_id, s.ts_ms, s.type, s.speed_kmh, s.accel_ms2, s.lateral_accel_ms2) == (
        r.event_id, r.driver_id, r.ts_ms, r.type, r.speed_kmh, r.accel_ms2, r.lateral_accel_ms2)
    assert strip_positions(s) is s


def test_only_the_listed_drivers_are_stripped_and_an_empty_set_costs_nothing():
    readings = [reading(i) for i in range(10)]
    assert strip_drivers(readings, frozenset()) is readings
    target = readings[3].driver_id
    out = strip_drivers(readings, {target})
    assert all((r.lat is None) == (r.driver_id == target) for r in out)
    assert any(r.lat is None for r in out) and any(r.lat is not None for r in out)


def test_mileage_only_and_erased_drivers_are_stripped_private_trips_and_full_are_not():
    states = [PrivacyState(driver_id="a", mode="mileage_only"), PrivacyState(driver_id="b", erased=True),
              PrivacyState(driver_id="c", mode="private_trips"), PrivacyState(driver_id="d")]
    assert stripped_drivers(states) == {"a", "b"}


@settings(max_examples=200)
@given(st.floats(0, 250), st.floats(0, 250), st.integers(1, 10_000), st.floats(0, 4))
def test_speed_times_time_is_within_the_stated_bound_of_any_motion_with_bounded_acceleration(v0, v1, dt_ms, accel):
    """docs/PRIVACY.md §3: |true − trapezoid| ≤ A·dt²/4 when |a| ≤ A. The extreme motions are the two envelopes."""
    dt = dt_ms / 1000.0
    a0, a1 = v0 / 3.6, v1 / 3.6
    if abs(a1 - a0) > accel * dt:  # the speeds must be reachable within the acceleration bound
        return
    est = travelled_m(v0, v1, dt_ms, max_interval_s=10.0)
    ts = np.linspace(0.0, dt, 2001)
    upper = np.minimum(a0 + accel * ts, a1 + accel * (dt - ts))
    lower = np.maximum(np.maximum(a0 - accel * ts, a1 - accel * (dt - ts)), 0.0)
    bound = accel * dt * dt / 4 + 1e-6 + dt * 1e-3
    for envelope in (upper, lower):
        assert abs(np.trapezoid(envelope, ts) - est) <= bound


def test_a_silence_longer_than_the_cap_is_not_assumed_driven():
    assert travelled_m(36.0, 36.0, 60_000, max_interval_s=10.0) == pytest.approx(100.0)
    assert travelled_m(36.0, 36.0, 0, max_interval_s=10.0) == 0.0


def _trip(stripped: bool, **cruise):
    d = Drive()
    d.ignition_on()
    d.cruise(300, 54.0, **cruise)
    d.add(speed_kmh=0.0)
    d.ignition_off()
    return [strip_positions(r) for r in d.readings] if stripped else d.readings


def test_a_trip_without_positions_measures_its_distance_from_speed_and_is_flagged():
    full = of_type(_fold(_trip(False)), "trip_ended")[0].summary
    stripped_events = _fold(_trip(True))
    started = of_type(stripped_events, "trip_started")[0]
    mileage = of_type(stripped_events, "trip_ended")[0].summary
    assert isinstance(started, TripStarted) and (started.lat, started.lon) == (None, None)
    assert math.isclose(mileage.distance_m, full.distance_m, rel_tol=0.01)  # 54 km/h for 300 s ≈ 4.5 km
    assert math.isclose(mileage.duration_s, full.duration_s)
    assert MILEAGE_ONLY_FLAG in mileage.quality_flags and MILEAGE_ONLY_FLAG not in full.quality_flags
    assert mileage.speeding_moderate_s == mileage.speeding_severe_s == 0.0


def test_detectors_cope_without_positions_events_encode_and_decode_with_null_locations():
    d = Drive()
    d.ignition_on()
    d.cruise(30, 60.0, unknown=("heading",))
    d.cruise(5, 60.0, unknown=("speed_kmh", "heading"))  # no speed and no position: the last speed holds
    d.add(speed_kmh=20.0, accel_ms2=-9.0)  # a hard stop
    d.add(speed_kmh=0.0, accel_ms2=-60.0 / 2, kind=ReadingType.CRASH)
    d.cruise(40, 0.0)
    d.ignition_off()
    events = _fold([strip_positions(r) for r in d.readings])
    assert of_type(events, "harsh_braking_detected"), "harsh braking needs no position"
    crash = of_type(events, "crash_detected")[0]
    assert isinstance(crash, CrashDetected) and crash.lat is None
    assert all(s.lat is None for s in [*crash.pre, *crash.post])
    for event in events:
        assert decode_event(encode_event(event)) == event
    ended = of_type(events, "trip_ended")[0]
    assert isinstance(ended, TripEnded) and ended.summary.distance_m > 0


def test_stripped_positions_are_null_in_the_copy_stream_and_come_back_as_none():
    readings = [reading(i) for i in range(6)]
    readings[2], readings[5] = strip_positions(readings[2]), strip_positions(readings[5])
    columns = ReadingColumns.from_readings(readings, [0] * 6, range(6))
    rows = parse_copy(encode_readings(columns))
    assert [(r["lat"] is None, r["lon"] is None) for r in rows] == [(i in (2, 5),) * 2 for i in range(6)]
    assert rows[0]["lat"] == readings[0].lat and rows[3]["lon"] == readings[3].lon
    assert [r.lat is None for r in columns.to_readings()] == [i in (2, 5) for i in range(6)]


class _Store:
    def __init__(self) -> None:
        self.states: list[PrivacyState] = []
        self.calls = 0

    async def withheld(self) -> list[PrivacyState]:
        self.calls += 1
        return list(self.states)


def test_the_stripped_set_is_reloaded_every_refresh_interval_and_never_per_batch():
    store, clock = _Store(), FakeClock()
    follower = StrippedDrivers(store, refresh_s=5.0, clock=clock)

    async def scenario():
        assert await follower.current() == frozenset() and store.calls == 1  # loaded before the first batch
        store.states = [PrivacyState(driver_id="drv-7", mode="mileage_only")]  # the consent changes now
        for _ in range(50):  # many batches within the interval: no query
            await follower.current()
            clock.advance(0.09)
        assert store.calls == 1
        clock.advance(5.0 - 50 * 0.09)  # refresh_s after the last load: the change is applied
        assert await follower.current() == {"drv-7"} and store.calls == 2

    asyncio.run(scenario())


def test_a_mileage_only_score_takes_the_portfolio_for_position_inputs_and_less_credibility():
    dataset = build_dataset(DatasetSpec(seed=5, drivers=30, days=1, exposure_years=10.0))
    trained = train(dataset, TrainingParams(seed=5), {"drivers": 30.0})
    predictor = RiskPredictor(trained.spec, trained.estimator, content_version(serialize(trained.spec,
                                                                                         trained.estimator)))
    features = tuple(dataset.features[0].tolist())
    full, mileage = predictor.assess_many([ScoreRequest(driver_id="a", features=features),
                                           ScoreRequest(driver_id="a", features=features, mileage_only=True)],
                                          k_trips=40.0)
    assert not full.mileage_only and mileage.mileage_only
    assert mileage.credibility == pytest.approx(full.credibility * MILEAGE_ONLY_CREDIBILITY)
    assert mileage.feature_hash == full.feature_hash  # the same inputs were sent; the flag is in the event
    position_inputs = {"harsh_cornering_per_100km", "speeding_moderate_share", "speeding_severe_share"}
    assert not position_inputs & {f.name for f in mileage.top_factors if f.contribution != 0}
    # whatever the speeding features say, a mileage_only score does not move with them
    bumped = list(features)
    bumped[11] += 0.5  # speeding_severe_share
    again = predictor.assess_many([ScoreRequest(driver_id="a", features=tuple(bumped), mileage_only=True)],
                                  k_trips=40.0)[0]
    assert again.score == mileage.score
