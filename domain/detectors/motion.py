"""What an interval between two samples says about the vehicle's motion, when devices leave fields unknown.

Pure. For the interval (p, r] it gives r's speed (reported, else distance / time), the longitudinal
acceleration, the signed lateral acceleration and an independent witness of the turn, fusing what the
device sent (docs/DOMAIN.md §4):

- longitudinal: the GNSS speed change across the last two intervals (p's predecessor → r), else across
  (p, r]. Phone accelerometers are mounted at any angle and average to modest values at 1 Hz, while a
  Doppler speed is mounting-free with ~0.1–0.3 m/s noise; two intervals halve the noise of a one-second
  difference. When r has no speed the estimate is None (the next sample bridges it). When neither p
  nor r has a speed, the device's `accel_ms2` is used, else the change of distance/time speeds.
- lateral: the device's `lateral_accel_ms2` when sent; else, when both samples are at or above
  `harsh_min_speed_kmh` (below it the course is GNSS noise), heading rate × mean speed, where a heading
  the device did not send is the bearing between consecutive positions (at least
  `harsh_min_displacement_m` apart). The witness (`Interval.witness_mps2`, computed on demand) is the turn
  rate of the bearings between consecutive positions × speed: independent of the reported course, so a
  gross course error does not show in it.

`MotionMemory` keeps what the next interval needs of the samples before it (owned by the open trip, part
of the snapshot).
"""

from __future__ import annotations

import msgspec

from domain.geo import bearing_deg, haversine_m, signed_lateral_from_heading_mps2
from domain.readings import Reading
from domain.rules import TripRules

_MPS_PER_KMH = 1.0 / 3.6


class MotionMemory(msgspec.Struct, kw_only=True, array_like=True):
    """The last sample's derived speed and what is known of the sample before it (mutated in place)."""

    speed_kmh: float  # the last sample's speed: reported, else distance / time of its interval
    before_speed_kmh: float | None = None  # reported speed of the sample before the last (None: unknown)
    before_ts_ms: int = 0
    before_lat: float | None = None  # position of the sample before the last (None: none in this trip)
    before_lon: float = 0.0


class Interval(msgspec.Struct, gc=False):
    """The motion over (p, r]. Speeds are km/h; accelerations m/s² (None: cannot be told). Built once per
    reading (a msgspec Struct: cheap to make); the witness is computed only when a detector asks."""

    dt_ms: int
    dist: float | None  # metres p → r, computed when first needed (`dist_m`)
    speed_kmh: float  # r
    prev_speed_kmh: float  # p
    longitudinal_mps2: float | None
    window_speed_kmh: float  # the fastest sample the longitudinal estimate spans
    lateral_mps2: float | None  # signed, + = turning right
    lateral_source: str  # device | heading
    lateral_from_course: bool  # both headings reported: the witness is then independent
    p: Reading
    r: Reading
    before: tuple[float, float] | None  # position of the sample before p
    min_displacement_m: float
    max_interval_s: float  # the longest interval speed × time integrates (TripRules.exposure_max_interval_s)

    def dist_m(self) -> float:
        """Great-circle distance p → r in metres; speed × time when either has no position (`travelled_m`)."""
        if self.dist is None:
            p, r = self.p, self.r
            if p.lat is None or r.lat is None:
                self.dist = travelled_m(self.prev_speed_kmh, self.speed_kmh, self.dt_ms, self.max_interval_s)
            else:
                self.dist = haversine_m(p.lat, p.lon, r.lat, r.lon)  # type: ignore[arg-type]
        return self.dist

    def bearing(self) -> float | None:
        """Bearing p → r, None when they are closer than `harsh_min_displacement_m` or either has no position."""
        p, r = self.p, self.r
        if p.lat is None or r.lat is None:
            return None
        return bearing_deg(p.lat, p.lon, r.lat, r.lon) if self.dist_m() >= self.min_displacement_m else None  # type: ignore[arg-type]

    def bearing_before(self) -> float | None:
        """Bearing from the sample before p to p, None when unknown or too close."""
        p = self.p
        if self.before is None or p.lat is None:
            return None
        lat, lon = self.before
        if haversine_m(lat, lon, p.lat, p.lon) < self.min_displacement_m:  # type: ignore[arg-type]
            return None
        return bearing_deg(lat, lon, p.lat, p.lon)

    def witness_mps2(self) -> float | None:
        """Signed lateral from the turn of the bearings between positions (pp → p, then p → r) × speed."""
        if self.dt_ms <= 0:
            return None
        before, now = self.bearing_before(), self.bearing()
        if before is None or now is None:
            return None
        mean_speed = (self.speed_kmh + self.prev_speed_kmh) * 0.5
        return signed_lateral_from_heading_mps2(before, now, self.dt_ms / 1000.0, mean_speed)


def reading_speed_kmh(prev: Reading | None, r: Reading) -> float:
    """r's speed: reported, else the distance from `prev` over the time between them, else 0."""
    if r.speed_kmh is not None:
        return r.speed_kmh
    if prev is None or r.ts_ms <= prev.ts_ms or prev.lat is None or r.lat is None:
        return 0.0
    return haversine_m(prev.lat, prev.lon, r.lat, r.lon) / ((r.ts_ms - prev.ts_ms) / 1000.0) * 3.6  # type: ignore[arg-type]


def travelled_m(prev_speed_kmh: float, speed_kmh: float, dt_ms: int, max_interval_s: float) -> float:
    """Metres covered over an interval without positions: the trapezoid of the two speeds × the time, the time
    capped at `max_interval_s` (a longer silence is not assumed driven). Pure. With |acceleration| ≤ A between
    the samples the true distance is within A·dt²/4 of this (docs/PRIVACY.md §3), plus the speeds' own error × dt."""
    if dt_ms <= 0:
        return 0.0
    dt_s = min(dt_ms / 1000.0, max_interval_s)
    return (prev_speed_kmh + speed_kmh) * 0.5 / 3.6 * dt_s


def observe(memory: MotionMemory | None, p: Reading, r: Reading, rules: TripRules) -> tuple[Interval, MotionMemory]:
    """The motion over (p, r] and the memory for the next interval (`memory` updated in place, or a new
    one when None: p opened the trip)."""
    located = p.lat is not None and r.lat is not None
    dist_m = None if r.speed_kmh is not None or not located else haversine_m(p.lat, p.lon, r.lat, r.lon)  # type: ignore[arg-type]
    before = None if memory is None or memory.before_lat is None else (memory.before_lat, memory.before_lon)
    dt_ms = r.ts_ms - p.ts_ms
    dt_s = dt_ms / 1000.0
    prev_speed = p.speed_kmh
    if prev_speed is None:
        prev_speed = memory.speed_kmh if memory is not None else 0.0
    speed = r.speed_kmh
    if speed is None:  # from the positions; without them (stripped) the previous speed holds
        speed = dist_m / dt_s * 3.6 if dt_ms > 0 and dist_m is not None else prev_speed
    longitudinal, window_speed = _longitudinal(memory, p, r, dt_s, speed, prev_speed, rules)
    iv = Interval(dt_ms, dist_m, speed, prev_speed, longitudinal, window_speed, r.lateral_accel_ms2, "device", False,
                  p, r, before, rules.harsh_min_displacement_m, rules.exposure_max_interval_s)
    # Heading-derived lateral only above the speed floor on both samples: below it the course is GNSS noise.
    floor = rules.harsh_min_speed_kmh
    if iv.lateral_mps2 is None and dt_ms > 0 and speed >= floor and prev_speed >= floor:
        to_heading = r.heading if r.heading is not None else iv.bearing()
        from_heading = p.heading if p.heading is not None else iv.bearing_before()
        if to_heading is not None and from_heading is not None:
            mean_speed = (speed + prev_speed) * 0.5
            iv.lateral_mps2 = signed_lateral_from_heading_mps2(from_heading, to_heading, dt_s, mean_speed)
            iv.lateral_source = "heading"
            iv.lateral_from_course = r.heading is not None and p.heading is not None

    if memory is None:
        memory = MotionMemory(speed_kmh=speed)
    memory.speed_kmh = speed
    memory.before_speed_kmh = p.speed_kmh
    memory.before_ts_ms = p.ts_ms
    memory.before_lat = p.lat
    memory.before_lon = 0.0 if p.lon is None else p.lon
    return iv, memory


def _longitudinal(
    memory: MotionMemory | None, p: Reading, r: Reading, dt_s: float, speed: float, prev_speed: float,
    rules: TripRules,
) -> tuple[float | None, float]:
    """(acceleration in m/s² or None, the fastest speed of the samples it spans in km/h)."""
    fastest = speed if speed > prev_speed else prev_speed
    max_gap_ms = rules.harsh_max_gap_s * 1000.0
    if r.speed_kmh is not None:
        if memory is not None and memory.before_speed_kmh is not None:
            span_ms = r.ts_ms - memory.before_ts_ms
            if span_ms > 0 and p.ts_ms - memory.before_ts_ms <= max_gap_ms:
                before = memory.before_speed_kmh
                accel = (r.speed_kmh - before) * _MPS_PER_KMH / (span_ms / 1000.0)
                return accel, (before if before > fastest else fastest)
        if p.speed_kmh is not None and dt_s > 0:
            return (r.speed_kmh - p.speed_kmh) * _MPS_PER_KMH / dt_s, fastest
        return None, fastest
    if p.speed_kmh is not None:
        return None, fastest  # r's speed is unknown: the next sample's window spans it
    if r.accel_ms2 is not None:
        return r.accel_ms2, fastest
    if memory is not None and dt_s > 0:
        return (speed - prev_speed) * _MPS_PER_KMH / dt_s, fastest
    return None, fastest
