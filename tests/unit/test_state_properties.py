"""Determinism of the trip state machine, as properties over generated driving streams (hypothesis).

(a) batch boundaries, (b) snapshot/restore points and (c) arrival order inside the reorder window
never change the events: same ids, same encoded bytes. Streams include readings whose speed,
acceleration or heading the device did not know (None).
"""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.driver_state import DriverState
from domain.events import TripDiscarded, TripEnded, TripStarted
from domain.readings import Reading, ReadingType
from domain.rules import TripRules
from domain.trip_machine import step, step_many, tick
from tests.unit.domain_helpers import Drive, encoded

# Small thresholds so short generated streams cross every rule (trips end, get discarded, crash...).
RULES = TripRules(
    parking_s=30.0,
    gap_s=120.0,
    min_trip_distance_m=300.0,
    min_trip_duration_s=60.0,
    start_motion_s=10.0,
    start_motion_m=60.0,
    speeding_min_duration_s=3.0,
    crash_pre_s=3.0,
    crash_post_s=3.0,
    reorder_window_ms=3_000,
)
PROPERTY_SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_speed = st.integers(0, 140).map(float)
_limit = st.sampled_from([None, 30.0, 50.0, 90.0, 130.0])
_segment = st.one_of(
    st.tuples(st.just("drive"), st.integers(1, 60), _speed, _limit),
    st.tuples(st.just("stop"), st.integers(1, 45)),
    st.tuples(st.just("silence"), st.sampled_from([2, 5, 40, 200])),
    st.tuples(st.just("odd_dt"), st.sampled_from([0.0, 0.25, 0.5, 2.0, 4.0]), _speed),
    st.tuples(st.just("ignition_on")),
    st.tuples(st.just("ignition_off")),
    st.tuples(st.just("accel"), st.lists(st.integers(-60, 60).map(lambda a: a / 10.0), min_size=1, max_size=5)),
    st.tuples(st.just("turn"), st.integers(-40, 40).map(float), st.integers(1, 6)),
    st.tuples(st.just("lateral"), st.lists(st.integers(-60, 60).map(lambda a: a / 10.0), min_size=1, max_size=4)),
    st.tuples(st.just("phone"), st.integers(1, 15), _speed),
    st.tuples(st.just("crash"), st.booleans()),
    st.tuples(
        st.just("unknown"),  # a device that did not know some fields (None): derived from neighbours
        st.integers(1, 8),
        st.sets(st.sampled_from(["speed_kmh", "accel_ms2", "heading"]), min_size=1),
        _speed,
    ),
)


def build(segments: list[tuple]) -> list[Reading]:
    d = Drive(driver_id="prop-driver")
    for seg in segments:
        kind = seg[0]
        if kind == "drive":
            d.cruise(seg[1], seg[2], limit_kmh=seg[3])
        elif kind == "stop":
            d.stop(seg[1])
        elif kind == "silence":
            d.silence(seg[1])
        elif kind == "odd_dt":
            d.add(dt_s=seg[1], speed_kmh=seg[2])
        elif kind == "ignition_on":
            d.ignition_on()
        elif kind == "ignition_off":
            d.ignition_off()
        elif kind == "accel":
            for a in seg[1]:
                d.add(speed_kmh=max(0.0, d.speed_kmh + a * 3.6), accel_ms2=a)
        elif kind == "turn":
            for _ in range(seg[2]):
                d.add(heading=d.heading + seg[1])
        elif kind == "lateral":
            for lat in seg[1]:
                d.add(lateral_ms2=lat)
        elif kind == "phone":
            d.cruise(seg[1], seg[2], kind=ReadingType.PHONE_USE)
        elif kind == "unknown":
            for _ in range(seg[1]):
                d.add(speed_kmh=seg[3], unknown=tuple(sorted(seg[2])))
        else:
            d.add(kind=ReadingType.CRASH if seg[1] else ReadingType.POSITION, accel_ms2=-30.0)
    return d.readings


streams = st.lists(_segment, min_size=1, max_size=20).map(build).filter(bool)


def one_pass(readings: list[Reading]) -> tuple[DriverState, list]:
    return step_many(DriverState.initial("prop-driver", "Europe/Paris"), readings, RULES)


def cuts(n: int) -> st.SearchStrategy[list[int]]:
    return st.lists(st.integers(0, n), max_size=12).map(sorted)


@PROPERTY_SETTINGS
@given(data=st.data(), readings=streams)
def test_batch_boundaries_do_not_change_events(data, readings):
    expected_state, expected = one_pass(readings)
    points = data.draw(cuts(len(readings)))
    state = DriverState.initial("prop-driver", "Europe/Paris")
    events: list = []
    bounds = [0, *points, len(readings)]
    for lo, hi in itertools.pairwise(bounds):
        if hi - lo == 1 and data.draw(st.booleans()):
            state, new = step(state, readings[lo], RULES)
        else:
            state, new = step_many(state, readings[lo:hi], RULES)
        events += new
    assert encoded(events) == encoded(expected)
    assert state.to_bytes() == expected_state.to_bytes()


@PROPERTY_SETTINGS
@given(data=st.data(), readings=streams)
def test_snapshot_and_restore_at_any_point_does_not_change_events(data, readings):
    expected_state, expected = one_pass(readings)
    points = set(data.draw(cuts(len(readings))))
    state = DriverState.initial("prop-driver", "Europe/Paris")
    events: list = []
    for i, reading in enumerate(readings):
        if i in points:
            state = DriverState.from_bytes(state.to_bytes())
        state, new = step(state, reading, RULES)
        events += new
    assert encoded(events) == encoded(expected)
    assert state.to_bytes() == expected_state.to_bytes()


@PROPERTY_SETTINGS
@given(data=st.data(), readings=streams)
def test_arrival_order_inside_the_reorder_window_does_not_change_events(data, readings):
    window = RULES.reorder_window_ms
    jitter = data.draw(st.lists(st.integers(0, window - 1), min_size=len(readings), max_size=len(readings)))
    dup = data.draw(st.lists(st.booleans(), min_size=len(readings), max_size=len(readings)))
    arrival: list[Reading] = []
    for _, reading, again in sorted(
        zip((r.ts_ms + j for r, j in zip(readings, jitter, strict=True)), readings, dup, strict=True),
        key=lambda t: t[0],
    ):
        arrival += [reading, reading] if again else [reading]
    now_ms = (readings[-1].ts_ms if readings else 0) + window
    s1, e1 = one_pass(readings)
    s1, t1 = tick(s1, now_ms, RULES)
    s2, e2 = one_pass(arrival)
    s2, t2 = tick(s2, now_ms, RULES)
    assert s2.late_readings == 0
    assert encoded(e1 + t1) == encoded(e2 + t2)


@PROPERTY_SETTINGS
@given(readings=streams)
def test_every_trip_is_started_once_and_closed_once_with_sane_totals(readings):
    state, events = one_pass(readings)
    state, more = tick(state, readings[-1].ts_ms + 10_000_000, RULES)
    events += more
    assert len({e.event_id for e in events}) == len(events)
    started = {e.trip_id for e in events if isinstance(e, TripStarted)}
    closed = [e.trip_id for e in events if isinstance(e, TripEnded | TripDiscarded)]
    assert sorted(map(str, closed)) == sorted(map(str, started))
    assert state.trip is None and state.crash is None and state.pending == []
    for e in events:
        if isinstance(e, TripEnded):
            s = e.summary
            assert s.start_ms <= s.end_ms
            for part in (s.night_s, s.idle_s, s.speeding_moderate_s + s.speeding_severe_s, s.phone_use_moving_s):
                assert 0.0 <= part <= s.duration_s + 1e-6
        elif e.trip_id is not None:
            assert e.trip_id in started
