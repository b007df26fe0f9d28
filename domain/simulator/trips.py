"""One trip at 1 Hz: sample a plan's phases, add sensor noise, phone use and (rarely) a crash. Pure.

`generate_trip` returns the rows of one trip as a numpy structured array of `READING_DTYPE`, in time
order, bracketed by an `ignition_on` and an `ignition_off` reading. Everything is vectorized over the
trip's samples; the only Python loop is the plan (`route.plan_trip`), one step per road block.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np

from domain.simulator.profiles import M_PER_DEG_LAT, DriverProfile
from domain.simulator.roads import SimConfig
from domain.simulator.route import (
    DTH,
    KIND,
    KIND_HARSH_ACCEL,
    KIND_HARSH_BRAKE,
    KIND_HARSH_TURN,
    KIND_HOLD,
    LIMIT,
    PH,
    PV,
    TAUH,
    TAUV,
    V0,
    V1,
    T,
    plan_trip,
)
from domain.simulator.truth import TrueEpisode

# Column order: 8-byte fields first (no padding). See docs/SIMULATOR.md §4.
READING_DTYPE = np.dtype([
    ("ts_ms", "<i8"),  # epoch ms (UTC), device time
    ("id_hash", "<u8"),  # 64 hash bits of (seed, driver_no, trip_no, sample); with ts_ms → event_id
    ("lat", "<f8"),
    ("lon", "<f8"),
    ("speed_kmh", "<f8"),
    ("accel_ms2", "<f8"),  # longitudinal, + = speeding up
    ("heading", "<f8"),  # degrees clockwise from north, [0, 360)
    ("speed_limit_kmh", "<f8"),  # NaN = none
    ("lateral_accel_ms2", "<f8"),  # speed × yaw rate, + = turning right; NaN = device has no IMU
    ("driver_no", "<u4"),  # driver_id = f"driver{driver_no:04d}"
    ("trip_no", "<u4"),  # driving_day × 32 + trip index in that day
    ("type", "u1"),  # index into TYPE_NAMES
])
TYPE_NAMES = ("position", "ignition_on", "ignition_off", "phone_use", "crash")
POSITION, IGNITION_ON, IGNITION_OFF, PHONE_USE, CRASH = range(len(TYPE_NAMES))

_MASK64 = (1 << 64) - 1


def _trapezoid(u: np.ndarray, dur: np.ndarray, tau: np.ndarray, peak: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Change so far and rate at time `u` into a trapezoidal-rate ramp (rise tau, plateau, fall tau)."""
    tau = np.maximum(tau, 1e-9)
    rise = u < tau
    fall = u > dur - tau
    rate = np.where(rise, peak * u / tau, np.where(fall, peak * (dur - u) / tau, peak))
    mid = peak * (u - tau / 2)
    tail = peak * (dur - tau) - peak * (dur - u) ** 2 / (2 * tau)
    value = np.where(rise, peak * u * u / (2 * tau), np.where(fall, tail, mid))
    return value, rate


def splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finalizer over a uint64 array (wrapping arithmetic). Pure."""
    z = x + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def trip_hash_base(seed: int, driver_no: int, trip_no: int) -> int:
    digest = hashlib.blake2b(f"{seed}:{driver_no}:{trip_no}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def sample_phases(
    phases: np.ndarray, theta0: float, jitter_mps: float, jitter_period_s: float, jitter_phase: float
) -> dict[str, np.ndarray]:
    """Sample phases at t = 0, 1, 2 … s: speed (m/s), accel, heading (rad), yaw rate, limit. Pure."""
    ends = np.cumsum(phases[:, T])
    n = int(ends[-1]) + 1
    t = np.arange(n, dtype=np.float64)
    idx = np.minimum(np.searchsorted(ends, t, side="right"), len(phases) - 1)
    ph = phases[idx]
    dur = ph[:, T]
    u = t - (ends - phases[:, T])[idx]
    dv, acc = _trapezoid(u, dur, ph[:, TAUV], ph[:, PV])
    sv = np.sign(ph[:, V1] - ph[:, V0])
    v = ph[:, V0] + sv * dv
    acc = sv * acc
    dh, yaw = _trapezoid(u, dur, ph[:, TAUH], ph[:, PH])
    sh = np.sign(ph[:, DTH])
    theta = (theta0 + np.cumsum(phases[:, DTH]) - phases[:, DTH])[idx] + sh * dh
    yaw = sh * yaw
    # Slow speed wander while cruising, faded in and out over each hold so phases join smoothly.
    cruising = (ph[:, KIND] == KIND_HOLD) & (ph[:, V0] > 0)
    if cruising.any():
        w = 2 * math.pi / jitter_period_s
        x = np.pi * u / dur
        env = np.sin(x) ** 2
        wave = np.sin(w * t + jitter_phase)
        # Short holds wander less (a 1 s hold cannot carry a 0.6 m/s swing without a jerk).
        amp = np.where(cruising, np.minimum(jitter_mps * np.minimum(dur / 20.0, 1.0), ph[:, V0] * 0.2), 0.0)
        v = v + amp * wave * env
        acc = acc + amp * (w * np.cos(w * t + jitter_phase) * env + wave * np.sin(2 * x) * np.pi / dur)
    return {"v": np.maximum(v, 0.0), "accel": acc, "theta": theta, "yaw": yaw, "limit": ph[:, LIMIT]}


def _positions(v: np.ndarray, theta: np.ndarray, lat0: float, lon0: float) -> tuple[np.ndarray, np.ndarray]:
    north = np.empty_like(v)
    east = np.empty_like(v)
    north[0] = east[0] = 0.0
    np.cumsum(v[:-1] * np.cos(theta[:-1]), out=north[1:])
    np.cumsum(v[:-1] * np.sin(theta[:-1]), out=east[1:])
    lat = lat0 + north / M_PER_DEG_LAT
    lon = lon0 + east / (M_PER_DEG_LAT * math.cos(math.radians(lat0)))
    return lat, lon


def generate_trip(
    rng: np.random.Generator, p: DriverProfile, cfg: SimConfig, *, start_ms: int, dist_km: float,
    budget_s: float, lat0: float, lon0: float, trip_no: int, seed: int,
) -> np.ndarray:
    """All readings of one trip, ts from `start_ms` at 1 Hz, as a READING_DTYPE array. Pure.

    Invariants: first row `ignition_on`, last row `ignition_off`, both at 0 km/h; duration ≤
    `budget_s` + final stop (the plan ends early rather than overlap the next trip).
    """
    return generate_trip_with_truth(
        rng, p, cfg, start_ms=start_ms, dist_km=dist_km, budget_s=budget_s, lat0=lat0, lon0=lon0,
        trip_no=trip_no, seed=seed,
    )[0]


def true_episodes(
    phases: np.ndarray, start_ms: int, horizon_s: float, driver_no: int, trip_no: int
) -> list[TrueEpisode]:
    """The harsh phases of a plan as ground-truth episodes, in time order. Pure.

    A phase that starts at or after `horizon_s` (seconds into the trip: the last driven sample, or the
    crash) did not happen; one running past it is cut there.
    Times are the phase's exact start and end (ms, rounded); `peak_mps2` is its planned peak: the
    plateau acceleration of a harsh ramp, the lateral acceleration of a harsh turn.
    """
    ends = np.cumsum(phases[:, T])
    out: list[TrueEpisode] = []
    for i in np.flatnonzero(np.isin(phases[:, KIND], (KIND_HARSH_BRAKE, KIND_HARSH_ACCEL, KIND_HARSH_TURN))):
        row = phases[i]
        begin_s = float(ends[i] - row[T])
        if begin_s >= horizon_s:
            continue
        kind = row[KIND]
        if kind == KIND_HARSH_TURN:
            name, peak = "cornering", float(row[PH] * row[V0])
        else:
            name, peak = ("braking" if kind == KIND_HARSH_BRAKE else "acceleration"), float(row[PV])
        out.append(TrueEpisode(
            driver_no=driver_no, trip_no=trip_no, kind=name, start_ms=start_ms + round(begin_s * 1000),
            end_ms=start_ms + round(min(float(ends[i]), horizon_s) * 1000), peak_mps2=peak,
        ))
    return out


def generate_trip_with_truth(
    rng: np.random.Generator, p: DriverProfile, cfg: SimConfig, *, start_ms: int, dist_km: float,
    budget_s: float, lat0: float, lon0: float, trip_no: int, seed: int,
) -> tuple[np.ndarray, list[TrueEpisode]]:
    """`generate_trip`'s rows and the trip's true harsh episodes (`true_episodes`). Pure; same RNG use."""
    phases, jitter = plan_trip(rng, p, cfg, dist_km, budget_s)
    theta0, period, phase0 = rng.random(3).tolist()
    s = sample_phases(phases, theta0 * 2 * math.pi, jitter, 20.0 + 40.0 * period, phase0 * 2 * math.pi)
    v, accel, theta, yaw, limit = s["v"], s["accel"], s["theta"], s["yaw"], s["limit"]
    n = len(v)
    types = np.zeros(n, dtype=np.uint8)
    moving = v > 1.0 / 3.6
    moving_h = float(moving.sum()) / 3600.0
    # Phone use: Poisson episodes per moving hour; readings typed phone_use only while moving.
    n_phone = int(rng.poisson(p.phone_episodes_per_h * moving_h))
    if n_phone:
        lo, hi = cfg.phone_episode_s
        starts = rng.integers(0, n, n_phone)
        lengths = (lo + (hi - lo) * rng.random(n_phone)).astype(np.int64)
        delta = np.zeros(n + 1, dtype=np.int64)
        np.add.at(delta, starts, 1)
        np.add.at(delta, np.minimum(starts + lengths, n), -1)
        types[(np.cumsum(delta[:-1]) > 0) & moving] = PHONE_USE
    # Crash: hazard per moving hour; the trip stops at the impact and ends after a stationary tail.
    crash_at = -1
    hazard = p.crash_per_driving_h * cfg.crash_rate_scale * moving_h
    if rng.random() < 1.0 - math.exp(-hazard):
        fast = np.flatnonzero(v > 20.0 / 3.6)
        if len(fast):
            crash_at = int(fast[rng.integers(0, len(fast))])
    if crash_at >= 0:
        lo, hi = cfg.crash_after_s
        tail = int(lo + (hi - lo) * rng.random())
        keep = crash_at + 1
        n = keep + tail
        v = np.concatenate([v[:keep], np.zeros(tail)])
        accel = np.concatenate([accel[:keep], np.zeros(tail)])
        theta = np.concatenate([theta[:keep], np.full(tail, theta[crash_at])])
        yaw = np.concatenate([yaw[:keep], np.zeros(tail)])
        limit = np.concatenate([limit[:keep], np.full(tail, limit[crash_at])])
        types = np.concatenate([types[:keep], np.zeros(tail, dtype=np.uint8)])
        clo, chi = cfg.crash_accel_mps2
        accel[crash_at] = -(clo + (chi - clo) * rng.random())
        types[crash_at] = CRASH
    types[0] = IGNITION_ON
    types[-1] = IGNITION_OFF
    noise = rng.standard_normal((2, n)) * cfg.accel_noise_mps2
    if crash_at >= 0:
        noise[0, crash_at] = 0.0
    lat, lon = _positions(v, theta, lat0, lon0)
    out = np.empty(n, dtype=READING_DTYPE)
    out["ts_ms"] = start_ms + 1000 * np.arange(n, dtype=np.int64)
    base = np.uint64(trip_hash_base(seed, driver_no := p.driver_no, trip_no))
    out["id_hash"] = splitmix64(base + np.arange(n, dtype=np.uint64))
    out["lat"] = np.round(lat, 6)
    out["lon"] = np.round(lon, 6)
    out["speed_kmh"] = np.round(v * 3.6, 2)
    out["accel_ms2"] = np.round(accel + noise[0], 3)
    out["heading"] = np.round(np.degrees(theta) % 360.0, 2) % 360.0
    out["speed_limit_kmh"] = limit
    out["lateral_accel_ms2"] = np.round(v * yaw + noise[1], 3) if p.has_lateral_sensor else np.nan
    out["driver_no"] = driver_no
    out["trip_no"] = trip_no
    out["type"] = types
    horizon_s = float(crash_at if crash_at >= 0 else n - 1)
    return out, true_episodes(phases, start_ms, horizon_s, driver_no, trip_no)
