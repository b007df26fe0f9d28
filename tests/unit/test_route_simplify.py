"""Douglas–Peucker with a point budget (domain/route_simplify.py): examples, and properties on generated tracks
checked against a plain recursive Douglas–Peucker written here."""

from __future__ import annotations

import math
from itertools import pairwise

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.route_simplify import (
    RouteRules,
    plane_xy_m,
    segment_distances_m,
    simplify_route,
    simplify_track,
)

M_PER_DEG = math.radians(1.0) * 6_371_008.8


def _point_to_segment_m(p, a, b) -> float:
    """Written out in plain floats, independently of the vectorized version under test."""
    abx, aby = b[0] - a[0], b[1] - a[1]
    apx, apy = p[0] - a[0], p[1] - a[1]
    length2 = abx * abx + aby * aby
    t = 0.0 if length2 == 0 else max(0.0, min(1.0, (apx * abx + apy * aby) / length2))
    return math.hypot(apx - t * abx, apy - t * aby)


def _reference_dp(xy: np.ndarray, tolerance_m: float) -> list[int]:
    """Textbook recursion: keep the farthest point of a segment while it is farther than the tolerance."""
    kept = {0, len(xy) - 1}

    def split(first: int, last: int) -> None:
        if last - first < 2:
            return
        d = segment_distances_m(xy[first + 1:last], xy[first], xy[last])
        k = int(np.argmax(d))
        if d[k] > tolerance_m:
            kept.add(first + 1 + k)
            split(first, first + 1 + k)
            split(first + 1 + k, last)

    split(0, len(xy) - 1)
    return sorted(kept)


@st.composite
def tracks(draw) -> tuple[list[float], list[float]]:
    """A random walk of 0–250 points near a random place: steps up to ~1 km, and now and then a return to an
    earlier point (loops, repeats, round trips)."""
    lat, lon = draw(st.floats(-70, 70)), draw(st.floats(-180, 179.99))
    n = draw(st.integers(0, 250))
    steps = draw(st.lists(st.tuples(st.floats(-0.01, 0.01), st.floats(-0.01, 0.01), st.integers(0, 300)),
                          min_size=n, max_size=n))
    lats: list[float] = []
    lons: list[float] = []
    for dlat, dlon, back in steps:
        if back < len(lats) and back % 10 == 0:
            lat, lon = lats[back], lons[back]
        else:
            lat = min(89.0, max(-89.0, lat + dlat))
            lon = (lon + dlon + 180.0) % 360.0 - 180.0
        lats.append(lat)
        lons.append(lon)
    return lats, lons


budgets = st.integers(2, 60)
tolerances = st.floats(0.0, 200.0)


@settings(max_examples=50, deadline=None)
@given(tracks(), tolerances, budgets)
def test_the_first_and_last_points_are_kept_and_the_rest_is_a_subsequence(track, tolerance_m, max_points):
    lats, lons = track
    kept = simplify_track(lats, lons, tolerance_m=tolerance_m, max_points=max_points).indices
    n = len(lats)
    if n == 0:
        assert kept == ()
        return
    assert kept[0] == 0 and kept[-1] == n - 1
    assert all(a < b for a, b in pairwise(kept))


@settings(max_examples=50, deadline=None)
@given(tracks(), tolerances, budgets)
def test_the_budget_holds_and_the_tolerance_only_grows(track, tolerance_m, max_points):
    lats, lons = track
    result = simplify_track(lats, lons, tolerance_m=tolerance_m, max_points=max_points)
    assert len(result.indices) <= max_points
    assert result.tolerance_m >= tolerance_m


@settings(max_examples=50, deadline=None)
@given(tracks(), tolerances, budgets)
def test_every_dropped_point_lies_within_the_tolerance_of_the_segment_that_replaced_it(track, tolerance_m,
                                                                                    max_points):
    lats, lons = track
    result = simplify_track(lats, lons, tolerance_m=tolerance_m, max_points=max_points)
    xy = plane_xy_m(np.asarray(lats), np.asarray(lons)).tolist()
    for a, b in pairwise(result.indices):
        for i in range(a + 1, b):
            assert _point_to_segment_m(xy[i], xy[a], xy[b]) <= result.tolerance_m + 1e-6


@settings(max_examples=50, deadline=None)
@given(tracks(), tolerances, budgets)
def test_the_result_is_plain_douglas_peucker_at_the_tolerance_it_reports(track, tolerance_m, max_points):
    lats, lons = track
    result = simplify_track(lats, lons, tolerance_m=tolerance_m, max_points=max_points)
    if len(lats) > 2:
        xy = plane_xy_m(np.asarray(lats), np.asarray(lons))
        assert list(result.indices) == _reference_dp(xy, result.tolerance_m)


def test_a_straight_drive_is_its_two_ends():
    lats = [45.0 + i * 1e-4 for i in range(100)]
    assert simplify_track(lats, [7.0] * 100, tolerance_m=1.0, max_points=500).indices == (0, 99)


def test_a_right_angle_keeps_its_corner():
    lats = [45.0 + i * 1e-4 for i in range(50)] + [45.0049] * 50
    lons = [7.0] * 50 + [7.0 + i * 1e-4 for i in range(1, 51)]
    assert simplify_track(lats, lons, tolerance_m=5.0, max_points=500).indices == (0, 49, 99)


def test_a_round_trip_keeps_its_far_end():
    out = [45.0 + i * 1e-3 for i in range(11)]
    lats = out + out[-2::-1]
    kept = simplify_track(lats, [7.0] * len(lats), tolerance_m=5.0, max_points=500).indices
    assert kept == (0, 10, 20)


def test_a_long_noisy_track_is_cut_to_the_budget_with_a_larger_tolerance():
    rng = np.random.default_rng(3)
    n = 20_000
    heading = np.cumsum(rng.normal(0, 0.05, n))
    lats = 45.0 + np.cumsum(np.cos(heading)) * 10 / M_PER_DEG + rng.normal(0, 3 / M_PER_DEG, n)
    lons = 7.0 + np.cumsum(np.sin(heading)) * 10 / M_PER_DEG / math.cos(math.radians(45))
    result = simplify_track(lats.tolist(), lons.tolist(), tolerance_m=5.0, max_points=500)
    assert 400 <= len(result.indices) <= 500 and result.tolerance_m > 5.0


def test_readings_without_a_known_position_are_skipped():
    positions = [(45.0, 7.0), (None, 7.001), (45.001, None), (math.nan, 7.0), (45.002, 7.0), (91.0, 7.0)]
    route = simplify_route(positions, RouteRules())
    assert (route.points_in, route.points_skipped) == (2, 4)
    assert route.coordinates == [(7.0, 45.0), (7.0, 45.002)]


def test_no_reading_or_one_reading_is_a_route_of_that_many_points():
    assert simplify_route([], RouteRules()).coordinates == []
    assert simplify_route([(45.0, 7.0)], RouteRules()).coordinates == [(7.0, 45.0)]


@pytest.mark.parametrize("changes", [{"max_points": 1}, {"tolerance_m": -1.0}, {"max_readings": 1}])
def test_rules_refuse_what_cannot_make_a_line(changes):
    with pytest.raises(ValueError):
        RouteRules(**changes)
