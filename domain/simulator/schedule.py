"""When each driver drives: a per-(driver, driving day) schedule of trips. Pure.

A driving day `d` runs from 05:00 local on day `d` (days since 1970-01-01, local calendar) to 05:00
local the next day. Its schedule depends only on (seed, driver_no, d): trips never cross a driving
day boundary and never overlap each other (each gets a time budget that ends before the next
starts), so any window of simulated time can be generated without its neighbours.
"""

from __future__ import annotations

import math

import msgspec
import numpy as np

from domain.simulator.profiles import M_PER_DEG_LAT, DriverProfile, utc_offset_ms
from domain.simulator.roads import SimConfig

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
MAX_TRIPS_PER_DAY = 32  # trip_no = day × 32 + index
_SCHEDULE_STREAM = 1
TRIP_STREAM = 2


class PlannedTrip(msgspec.Struct, frozen=True):
    """A scheduled trip: start (epoch ms), planned distance (km), time budget (s), start point."""

    driver_no: int
    day: int
    index: int
    start_ms: int
    dist_km: float
    budget_s: float
    lat0: float
    lon0: float

    @property
    def trip_no(self) -> int:
        return self.day * MAX_TRIPS_PER_DAY + self.index


def day_start_ms(p: DriverProfile, day: int, cfg: SimConfig) -> int:
    """UTC epoch ms of 05:00 local on local calendar day `day` (DST-aware, EU rule)."""
    local_ms = day * DAY_MS + int(cfg.day_start_h * HOUR_MS)
    approx = local_ms - p.zone.std_offset_min * 60_000
    return local_ms - utc_offset_ms(p.zone, approx)


def driving_day_of(p: DriverProfile, ts_ms: int, cfg: SimConfig) -> int:
    """The driving day containing instant `ts_ms`."""
    day = (ts_ms + utc_offset_ms(p.zone, ts_ms) - int(cfg.day_start_h * HOUR_MS)) // DAY_MS
    # The offset at ts and at the boundary can differ on DST days: settle against exact starts.
    while day_start_ms(p, day + 1, cfg) <= ts_ms:
        day += 1
    while day_start_ms(p, day, cfg) > ts_ms:
        day -= 1
    return day


def _start_hour(rng_u: list[float], p: DriverProfile, cfg: SimConfig) -> float:
    a, b, c = rng_u
    if a < p.night_trip_prob:
        return cfg.night_start_h + (cfg.night_end_h - cfg.night_start_h) * b
    # Day trips: morning commute, evening commute, or anywhere 09:00–21:00.
    if b < 0.35:
        h = 7.75 + 0.75 * _probit(c)
    elif b < 0.70:
        h = 17.5 + 1.0 * _probit(c)
    else:
        h = 9.0 + 12.0 * c
    return min(max(h, cfg.day_start_h + 0.5), cfg.night_start_h - 0.25)


def _probit(x: float) -> float:
    # Logistic approximation of the normal quantile (|error| < 0.02 σ over the used range).
    x = min(max(x, 1e-6), 1 - 1e-6)
    return math.log(x / (1 - x)) / 1.702


def _budget_s(dist_km: float) -> float:
    # Generous duration estimate: slow urban average, faster on long (highway) trips, plus stops.
    speed_kmh = 24.0 if dist_km < 12 else 40.0
    return 1.6 * dist_km / speed_kmh * 3600 + 900.0


def day_schedule(seed: int, p: DriverProfile, day: int, cfg: SimConfig) -> list[PlannedTrip]:
    """Trips of driver `p` in driving day `day`, in start order. Pure (seeded by seed, driver, day)."""
    rng = np.random.default_rng([seed, p.driver_no, day, _SCHEDULE_STREAM])
    n = min(int(rng.poisson(p.trips_per_day)), MAX_TRIPS_PER_DAY)
    if n == 0:
        return []
    u = rng.random((n, 8)).tolist()
    hours = sorted(_start_hour(row[:3], p, cfg) for row in u)
    t0 = day_start_ms(p, day, cfg)
    t_end = day_start_ms(p, day + 1, cfg)
    local0 = cfg.day_start_h
    trips: list[PlannedTrip] = []
    free_from = t0
    cos_lat = math.cos(math.radians(p.home_lat))
    for j, (h, row) in enumerate(zip(hours, u, strict=True)):
        dist_km = min(max(p.median_trip_km * math.exp(0.6 * _probit(row[3])), 0.8), cfg.max_trip_km)
        budget = _budget_s(dist_km)
        gap_ms = int((5 + 25 * row[4]) * 60_000)
        start = max(t0 + int((h - local0) * HOUR_MS) + int(row[5] * 60_000), free_from)
        if start + budget * 1000 + 120_000 > t_end:
            break
        # The first trip of the day leaves home; later ones leave from a place a few km away.
        r_m = 0.0 if j == 0 else 1500.0 + 6000.0 * row[6]
        ang = 2 * math.pi * row[7]
        lat0 = p.home_lat + r_m * math.cos(ang) / M_PER_DEG_LAT
        lon0 = p.home_lon + r_m * math.sin(ang) / (M_PER_DEG_LAT * cos_lat)
        trips.append(PlannedTrip(p.driver_no, day, j, start, dist_km, budget, lat0, lon0))
        free_from = start + int(budget * 1000) + gap_ms
    return trips
