"""A trip's track as a short polyline: Douglas–Peucker with a tolerance raised until a point budget holds.

Pure (numpy, no I/O). Positions are WGS-84 degrees; distances are metres in a local equirectangular plane
around the track (east = Δlon·cos(mean lat)·R, north = Δlat·R, with R = geo.EARTH_RADIUS_M), whose error is
well under 1 % over the tens of kilometres of a trip.

Douglas–Peucker (Douglas & Peucker 1973) keeps the first and last point, finds the point farthest from the
segment joining them and, if it lies more than the tolerance away, keeps it and repeats on both halves. Every
dropped point therefore lies within the tolerance of the segment of kept points that spans it. We measure the
distance to the *segment* (not the infinite line), so a track that comes back on itself (a U-turn, a round
trip home → home, whose end segment has length 0) keeps its far end.

The split tree does not depend on the tolerance, only where the recursion stops does. So one pass at the asked
tolerance records, for each kept point, the smallest distance on its path from the root (`_significance`);
Douglas–Peucker at any larger tolerance t keeps exactly the points whose value exceeds t. If more than
`max_points` survive, t is raised to the value that leaves at most that many — one pass, no retries.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import msgspec
import numpy as np

from domain.geo import EARTH_RADIUS_M


class RouteRules(msgspec.Struct, frozen=True, kw_only=True):
    """`tolerance_m`: the Douglas–Peucker tolerance tried first, about a phone's GPS error (ours: 5 m);
    `max_points`: the most points a simplified route may have (ours: 500, plenty for a map at any zoom a
    phone shows a whole trip at); `max_readings`: the most readings read for one route (a safety bound:
    ~28 h at 1 Hz)."""

    tolerance_m: float = 5.0
    max_points: int = 500
    max_readings: int = 100_000

    def __post_init__(self) -> None:
        if not self.tolerance_m >= 0.0:
            raise ValueError("tolerance_m must be ≥ 0")
        if self.max_points < 2:
            raise ValueError("max_points must be ≥ 2 (a line has two ends)")
        if self.max_readings < 2:
            raise ValueError("max_readings must be ≥ 2")


class Simplified(msgspec.Struct, frozen=True, kw_only=True):
    """`indices` of the input points kept (increasing; the first and last input point included) and the
    tolerance in metres that produced them (≥ the asked one; raised to respect the point budget)."""

    indices: tuple[int, ...]
    tolerance_m: float


def plane_xy_m(lats: np.ndarray, lons: np.ndarray) -> np.ndarray:
    """(n, 2) metres east/north of the first point, in the local equirectangular plane described above.
    Longitude differences are wrapped to [−180°, 180°) so a track across the antimeridian stays whole."""
    if len(lats) == 0:
        return np.empty((0, 2))
    lat_rad = np.radians(lats)
    dlon = (lons - lons[0] + 540.0) % 360.0 - 180.0
    x = np.radians(dlon) * math.cos(float(np.mean(lat_rad))) * EARTH_RADIUS_M
    y = (lat_rad - lat_rad[0]) * EARTH_RADIUS_M
    return np.column_stack((x, y))


def segment_distances_m(points: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance of each of `points` (n, 2) to the segment a–b (a point when a == b), same units."""
    ab = b - a
    length2 = float(ab @ ab)
    ap = points - a
    if length2 == 0.0:
        return np.hypot(ap[:, 0], ap[:, 1])
    t = np.clip((ap @ ab) / length2, 0.0, 1.0)
    off = ap - t[:, None] * ab
    return np.hypot(off[:, 0], off[:, 1])


def simplify_track(lats: Sequence[float], lons: Sequence[float], *, tolerance_m: float,
                   max_points: int) -> Simplified:
    """Douglas–Peucker at `tolerance_m`, or at the smallest larger tolerance that keeps ≤ `max_points`.
    Deterministic (ties go to the earliest point). Positions must be finite degrees."""
    if max_points < 2:
        raise ValueError("max_points must be ≥ 2")
    if len(lats) != len(lons):
        raise ValueError("lats and lons differ in length")
    n = len(lats)
    if n <= 2:
        return Simplified(indices=tuple(range(n)), tolerance_m=tolerance_m)
    xy = plane_xy_m(np.asarray(lats, dtype=np.float64), np.asarray(lons, dtype=np.float64))
    significance = _significance(xy, tolerance_m)
    interior = np.flatnonzero(significance > tolerance_m)
    budget = max_points - 2
    if len(interior) > budget:
        values = np.sort(significance[interior])[::-1]
        tolerance_m = float(values[budget])  # at most `budget` values lie strictly above it
        interior = interior[significance[interior] > tolerance_m]
    return Simplified(indices=(0, *interior.tolist(), n - 1), tolerance_m=tolerance_m)


def _significance(xy: np.ndarray, tolerance_m: float) -> np.ndarray:
    """Per point: the smallest split distance on its path in the split tree (−1 where the recursion at
    `tolerance_m` never kept it). An explicit stack: a track of 100,000 points may nest deeply."""
    significance = np.full(len(xy), -1.0)
    stack = [(0, len(xy) - 1, math.inf)]
    while stack:
        first, last, bound = stack.pop()
        if last - first < 2:
            continue
        distances = segment_distances_m(xy[first + 1:last], xy[first], xy[last])
        k = int(np.argmax(distances))
        farthest = float(distances[k])
        if farthest <= tolerance_m:
            continue
        split = first + 1 + k
        value = min(farthest, bound)
        significance[split] = value
        stack.append((first, split, value))
        stack.append((split, last, value))
    return significance


class Route(msgspec.Struct, frozen=True, kw_only=True):
    """A simplified route: `coordinates` as GeoJSON positions [lon, lat] in time order; `points_in` readings
    with a known position went in, `points_skipped` without one were left out; `tolerance_m` as applied."""

    coordinates: list[tuple[float, float]]
    points_in: int
    points_skipped: int
    tolerance_m: float


def known_position(lat: float | None, lon: float | None) -> bool:
    """A position we can draw: both coordinates present, finite and in range."""
    return (lat is not None and lon is not None and math.isfinite(lat) and math.isfinite(lon)
            and -90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0)


def simplify_route(positions: Sequence[tuple[float | None, float | None]], rules: RouteRules) -> Route:
    """The route of (lat, lon) readings in time order: readings without a known position skipped, the rest
    simplified by `simplify_track` under `rules`."""
    known = [(lat, lon) for lat, lon in positions if known_position(lat, lon)]
    lats = [p[0] for p in known]
    lons = [p[1] for p in known]
    kept = simplify_track(lats, lons, tolerance_m=rules.tolerance_m, max_points=rules.max_points)
    return Route(coordinates=[(lons[i], lats[i]) for i in kept.indices], points_in=len(known),
                 points_skipped=len(positions) - len(known), tolerance_m=kept.tolerance_m)
