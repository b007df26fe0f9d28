"""Phone realism: what a phone app records of a trip, from the simulator's exact 1 Hz kinematics. Pure.

`phone_trip(rows, rng, cfg, accel_known)` takes one trip's rows (as `trips.generate_trip` makes them:
exact speed, heading and positions) and returns what a phone would have sent: GNSS Doppler speed with
noise (sometimes none), course over ground whose error grows as speed falls (none near standstill, and
occasional gross errors), positions with a slowly wandering error and multipath jumps, acceleration
averaged over each second along an axis of the phone (mounted at a random yaw, so not the car's
longitudinal axis), no lateral acceleration, readings lost in GNSS outages, and sometimes a recording
that stops mid-drive. Unknown values are NaN in the rows (None in `Reading`s). Every default and its
source: docs/SIMULATOR.md §11.

Randomness comes only from `rng` (the caller seeds it per trip, apart from the trip's own stream), so
the default simulator output is untouched by this module.
"""

from __future__ import annotations

import math

import msgspec
import numpy as np

from domain.simulator.profiles import M_PER_DEG_LAT
from domain.simulator.trips import CRASH
from domain.simulator.truth import TrueEpisode

_AR_BLOCK = 128  # AR(1) filtered in blocks: ρ^-128 stays far from overflow for τ ≥ 10 s


class RealismConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Noise and availability of a phone recording. Ranges (lo, hi) are drawn uniformly per trip."""

    name: str = "phone"
    # GNSS Doppler speed: white noise per fix, σ drawn per trip; a fix may come without speed.
    speed_sigma_mps: tuple[float, float] = (0.1, 0.3)
    speed_missing_prob: float = 0.01
    # Course over ground: error ≈ atan(σ_speed / speed) (velocity noise across the direction of travel);
    # none below this speed; with this probability a fix's course is grossly wrong (σ below, degrees).
    heading_min_speed_mps: float = 0.5
    heading_outlier_prob: float = 0.01
    heading_outlier_sd_deg: float = 25.0
    # Position error per axis: first-order Gauss-Markov, σ drawn per trip, correlation time in seconds.
    position_sigma_m: tuple[float, float] = (2.0, 5.0)
    position_corr_s: float = 60.0
    # Multipath jumps: per recorded hour; offset magnitude (m) and duration (s) of each.
    jumps_per_h: float = 2.0
    jump_m: tuple[float, float] = (15.0, 50.0)
    jump_s: tuple[int, int] = (3, 15)
    # Accelerometer: share of drivers whose phone sends none; per-trip zero offset; residual noise of a
    # one-second mean (vibration and sensor noise after averaging).
    accel_missing_driver_prob: float = 0.1
    accel_bias_sd_mps2: float = 0.25
    accel_noise_sd_mps2: float = 0.03
    # GNSS outages (tunnels, urban canyons): readings missing; per recorded hour, duration in seconds.
    outages_per_h: float = 1.0
    outage_s: tuple[int, int] = (5, 40)
    # The recording stops mid-drive (app killed, battery saver) with this probability, after this
    # fraction of the trip.
    cut_prob: float = 0.05
    cut_after: tuple[float, float] = (0.2, 0.9)


PHONE = RealismConfig()
REALISM_MODES: dict[str, RealismConfig] = {"phone": PHONE}


def _uniform(rng: np.random.Generator, lo_hi: tuple[float, float]) -> float:
    lo, hi = lo_hi
    return lo + (hi - lo) * float(rng.random())


def _ar1(noise: np.ndarray, rho: float) -> np.ndarray:
    """Unit-variance AR(1), e_k = ρ·e_{k−1} + √(1−ρ²)·w_k, from n + 1 standard normals (the first is
    e_{−1}: the process starts stationary). Vectorized in blocks."""
    n = len(noise) - 1
    out = np.empty(n)
    gain = math.sqrt(1.0 - rho * rho)
    prev = float(noise[0])
    for lo in range(0, n, _AR_BLOCK):
        w = gain * noise[1 + lo : 1 + lo + _AR_BLOCK]
        k = np.arange(len(w), dtype=np.float64)
        block = rho ** (k + 1) * prev + rho**k * np.cumsum(w * rho**-k)
        out[lo : lo + len(w)] = block
        prev = float(block[-1])
    return out


def device_has_accel(seed: int, driver_no: int, cfg: RealismConfig) -> bool:
    """Whether this driver's phone sends acceleration at all (a property of the device, not the trip)."""
    rng = np.random.default_rng([seed, driver_no, 0xACCE])
    return bool(rng.random() >= cfg.accel_missing_driver_prob)


def phone_trip(
    rows: np.ndarray, rng: np.random.Generator, cfg: RealismConfig, *, accel_known: bool
) -> tuple[np.ndarray, np.ndarray]:
    """(the rows a phone would send, which of the input samples were kept). Pure in (rows, rng state).

    Input rows are one trip in time order at 1 Hz with exact kinematics; the output keeps ts, ids, type
    and speed limit of the samples it keeps. NaN marks an unknown speed, acceleration or heading.
    """
    n = len(rows)
    out = rows.copy()
    if n == 0:
        return out, np.zeros(0, dtype=bool)
    v = rows["speed_kmh"] / 3.6
    theta = np.radians(rows["heading"])

    # Acceleration averaged over the second before each sample, in the car's frame, then seen along the
    # phone's y axis: the longitudinal mean is exactly Δv over that second; the lateral mean is the
    # mean speed times the heading change.
    a_lon = np.diff(v, prepend=v[0])
    dtheta = (np.diff(theta, prepend=theta[0]) + math.pi) % (2 * math.pi) - math.pi
    a_lat = 0.5 * (v + np.concatenate([v[:1], v[:-1]])) * dtheta
    psi = 2 * math.pi * float(rng.random())
    bias = cfg.accel_bias_sd_mps2 * float(rng.standard_normal())
    accel = a_lon * math.cos(psi) + a_lat * math.sin(psi) + bias + cfg.accel_noise_sd_mps2 * rng.standard_normal(n)
    crash = rows["type"] == CRASH
    accel[crash] = rows["accel_ms2"][crash]  # the phone's own crash detection reports its peak
    out["accel_ms2"] = np.round(accel, 3) if accel_known else np.nan
    out["lateral_accel_ms2"] = np.nan

    # GNSS speed and course.
    sigma_v = _uniform(rng, cfg.speed_sigma_mps)
    speed = np.maximum(v + sigma_v * rng.standard_normal(n), 0.0)
    speed[rng.random(n) < cfg.speed_missing_prob] = np.nan
    out["speed_kmh"] = np.round(speed * 3.6, 2)
    course_sd = np.arctan2(sigma_v, np.maximum(v, 1e-6))
    course = theta + course_sd * rng.standard_normal(n)
    gross = rng.random(n) < cfg.heading_outlier_prob
    course[gross] += math.radians(cfg.heading_outlier_sd_deg) * rng.standard_normal(int(gross.sum()))
    heading = np.round(np.degrees(course) % 360.0, 2) % 360.0
    heading[v < cfg.heading_min_speed_mps] = np.nan
    out["heading"] = heading

    # Positions: slowly wandering error plus multipath jumps.
    sigma_p = _uniform(rng, cfg.position_sigma_m)
    rho = math.exp(-1.0 / cfg.position_corr_s)
    north = sigma_p * _ar1(rng.standard_normal(n + 1), rho)
    east = sigma_p * _ar1(rng.standard_normal(n + 1), rho)
    for _ in range(int(rng.poisson(cfg.jumps_per_h * n / 3600.0))):
        k0 = int(rng.integers(0, n))
        length = int(rng.integers(cfg.jump_s[0], cfg.jump_s[1] + 1))
        size = _uniform(rng, cfg.jump_m)
        direction = 2 * math.pi * float(rng.random())
        north[k0 : k0 + length] += size * math.cos(direction)
        east[k0 : k0 + length] += size * math.sin(direction)
    lat0 = float(rows["lat"][0])
    out["lat"] = np.round(rows["lat"] + north / M_PER_DEG_LAT, 6)
    out["lon"] = np.round(rows["lon"] + east / (M_PER_DEG_LAT * math.cos(math.radians(lat0))), 6)

    # Availability: outages drop readings; a recording may stop mid-drive.
    kept = np.ones(n, dtype=bool)
    for _ in range(int(rng.poisson(cfg.outages_per_h * n / 3600.0))):
        k0 = int(rng.integers(1, max(n, 2)))
        kept[k0 : k0 + int(rng.integers(cfg.outage_s[0], cfg.outage_s[1] + 1))] = False
    if rng.random() < cfg.cut_prob:
        kept[max(1, int(n * _uniform(rng, cfg.cut_after))) :] = False
    return out[kept], kept


def mark_observed(episodes: list[TrueEpisode], kept: np.ndarray, start_ms: int) -> list[TrueEpisode]:
    """The episodes with `observed` False where a sample from one second before to one after is missing."""
    n = len(kept)
    marked = []
    for ep in episodes:
        lo = max(math.floor((ep.start_ms - start_ms) / 1000.0) - 1, 0)
        hi = min(math.ceil((ep.end_ms - start_ms) / 1000.0) + 1, n - 1)
        seen = bool(kept[lo : hi + 1].all())
        marked.append(ep if seen else msgspec.structs.replace(ep, observed=False))
    return marked
