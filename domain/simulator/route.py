"""Trip plans: a route of road legs cut into blocks, turned into a list of kinematic phases. Pure.

A phase is a row of `PHASE_COLUMNS`: over `T_s` seconds the speed goes from `v0_mps` to `v1_mps`
with a trapezoidal acceleration of peak `pv_mps2` (ramp time `tauv_s`), and the heading turns by
`dtheta_rad` with a trapezoidal yaw rate of peak `ph_radps` (ramp time `tauh_s`). Stops, red lights,
turns, harsh incidents and cruising are all phases; `trips.sample_phases` samples them at 1 Hz.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np

from domain.simulator.profiles import DriverProfile
from domain.simulator.roads import ARTERIAL, HIGHWAY, RESIDENTIAL, URBAN, RoadType, SimConfig

PHASE_COLUMNS = ("T_s", "v0_mps", "v1_mps", "pv_mps2", "tauv_s", "dtheta_rad", "ph_radps", "tauh_s",
                 "limit_kmh", "kind")
T, V0, V1, PV, TAUV, DTH, PH, TAUH, LIMIT, KIND = range(len(PHASE_COLUMNS))
KIND_RAMP, KIND_HOLD, KIND_STOP, KIND_TURN = 0.0, 1.0, 2.0, 3.0
# Harsh phases keep their own kinds so the ground truth can list every true episode (`trips.true_episodes`);
# sampling treats them like their plain counterparts (only KIND_HOLD changes how a phase is sampled).
KIND_HARSH_BRAKE, KIND_HARSH_ACCEL, KIND_HARSH_TURN = 4.0, 5.0, 6.0

NORMAL_TAU_S = 1.2  # jerk-limited ramp-in of a normal acceleration
HARSH_TAU_S = 0.5  # harsh events build up fast
MAX_CURVE_LATERAL_MPS2 = 1.2  # bends between junctions stay well below cornering thresholds


def _uniform_stream(rng: np.random.Generator) -> Iterator[float]:
    while True:
        yield from rng.random(256).tolist()


class _Planner:
    """Accumulates phases; tracks elapsed seconds. Distances are returned in metres."""

    __slots__ = ("elapsed_s", "limit_kmh", "rows")

    def __init__(self) -> None:
        self.rows: list[tuple[float, ...]] = []
        self.elapsed_s = 0.0
        self.limit_kmh = 30.0

    def ramp(self, va: float, vb: float, peak: float, tau0: float, kind: float = KIND_RAMP) -> float:
        dv = abs(vb - va)
        if dv < 1e-3:
            return 0.0
        r = dv / peak
        tau = min(tau0, r)
        dur = r + tau
        self.rows.append((dur, va, vb, peak, tau, 0.0, 0.0, 1.0, self.limit_kmh, kind))
        self.elapsed_s += dur
        return dur * (va + vb) / 2

    def hold(self, v: float, dur: float, dtheta: float = 0.0) -> float:
        dur = max(dur, 1.0)
        ph = abs(dtheta) / (0.75 * dur)
        kind = KIND_HOLD if v > 0 else KIND_STOP
        self.rows.append((dur, v, v, 0.0, 1.0, dtheta, ph, dur / 4, self.limit_kmh, kind))
        self.elapsed_s += dur
        return v * dur

    def turn(self, v: float, dtheta: float, lateral: float, kind: float = KIND_TURN) -> float:
        w = lateral / v
        r = abs(dtheta) / w
        tau = min(0.8, r)
        dur = r + tau
        self.rows.append((dur, v, v, 0.0, 1.0, dtheta, w, tau, self.limit_kmh, kind))
        self.elapsed_s += dur
        return v * dur


def _legs(u: Callable[[], float], dist_m: float, hwy_prob: float, cfg: SimConfig) -> list[tuple[RoadType, float]]:
    res = min(0.15 * dist_m, 300.0 + 900.0 * u())
    res_end = min(0.15 * dist_m, 300.0 + 900.0 * u())
    middle = dist_m - res - res_end
    legs: list[tuple[RoadType, float]] = [(RESIDENTIAL, res)]
    if dist_m >= cfg.highway_min_trip_km * 1000 and u() < hwy_prob:
        urb, art = 500.0 + 1500.0 * u(), 1000.0 + 3000.0 * u()
        hwy = middle - 2 * (urb + art)
        if hwy > 3000.0:
            legs += [(URBAN, urb), (ARTERIAL, art), (HIGHWAY, hwy), (ARTERIAL, art), (URBAN, urb)]
            middle = 0.0
    while middle > 1.0:
        leg = min(middle, 1000.0 + 3000.0 * u())
        legs.append((ARTERIAL if u() < 0.4 else URBAN, leg))
        middle -= leg
    legs.append((RESIDENTIAL, res_end))
    return legs


def _signed_turn(u: Callable[[], float], harsh: bool) -> float:
    r = u()
    if harsh:
        angle = math.pi / 2 + (math.pi / 2) * u()  # sharp turns, roundabouts, U-turns
    else:
        angle = math.pi / 4 if r < 0.15 else (3 * math.pi / 4 if r > 0.92 else math.pi / 2)
    return angle if u() < 0.5 else -angle


def _normalish(u: Callable[[], float]) -> float:
    return (u() + u() + u() - 1.5) * 2.0  # mean 0, sd 1, bounded ±3


def plan_trip(
    rng: np.random.Generator, p: DriverProfile, cfg: SimConfig, dist_km: float, budget_s: float
) -> tuple[np.ndarray, float]:
    """Phases (n × len(PHASE_COLUMNS)) of one trip and the cruise-jitter amplitude (m/s).

    The trip is cut short (drives straight to its end) when the next block would exceed
    `budget_s`, so a trip never overlaps the driver's next scheduled trip.
    """
    u = _uniform_stream(rng).__next__
    dist_m = dist_km * 1000.0
    incident_hb = np.sort(rng.random(rng.poisson(p.harsh_braking_per_100km * dist_km / 100))) * dist_m
    incident_ha = np.sort(rng.random(rng.poisson(p.harsh_acceleration_per_100km * dist_km / 100))) * dist_m
    hb, ha = incident_hb.tolist(), incident_ha.tolist()
    jitter = cfg.speed_jitter_mps[0] + (cfg.speed_jitter_mps[1] - cfg.speed_jitter_mps[0]) * u()
    pl = _Planner()
    lo, hi = cfg.start_idle_s
    pl.limit_kmh = RESIDENTIAL.limits_kmh[0]
    pl.hold(0.0, lo + (hi - lo) * u())
    legs = _legs(u, dist_m, p.highway_affinity, cfg)
    v, cum_m, over_kmh = 0.0, 0.0, 0.0
    for leg_i, (rt, leg_m) in enumerate(legs):
        limit_kmh = rt.limits_kmh[min(int(u() * len(rt.limits_kmh)), len(rt.limits_kmh) - 1)]
        pl.limit_kmh = limit_kmh
        limit = limit_kmh / 3.6
        remaining, over_kmh = leg_m, 0.0  # a speeding episode ends with its leg
        while remaining > 1.0:
            blk = rt.block_m[0] + (rt.block_m[1] - rt.block_m[0]) * u()
            if remaining - blk < rt.block_m[0] * 0.5:
                blk = remaining
            remaining -= blk
            if pl.elapsed_s + blk / limit * 1.5 + 300.0 > budget_s:
                return _finish(pl, p, cfg, u, v), jitter
            v, over_kmh = _block(pl, p, cfg, u, rt, limit, blk, v, jitter, cum_m, hb, ha, over_kmh,
                                 last_of_leg=remaining <= 1.0,
                                 last_of_trip=remaining <= 1.0 and leg_i == len(legs) - 1)
            cum_m += blk
    return _finish(pl, p, cfg, u, v), jitter


def _finish(pl: _Planner, p: DriverProfile, cfg: SimConfig, u: Callable[[], float], v: float) -> np.ndarray:
    pl.ramp(v, 0.0, p.decel_peak_mps2, NORMAL_TAU_S)
    lo, hi = cfg.end_idle_s
    pl.hold(0.0, lo + (hi - lo) * u())
    return np.array(pl.rows, dtype=np.float64)


def _cruise_speed(
    p: DriverProfile, cfg: SimConfig, u: Callable[[], float], limit_kmh: float, jitter: float, over_kmh: float
) -> tuple[float, float]:
    """Cruise speed (m/s) of a block and the speeding excess (km/h, 0 = none) carried to the next."""
    if over_kmh <= 0 and u() < p.speeding_prob:
        severe = u() < p.severe_speeding_prob
        if limit_kmh <= cfg.speeding_split_limit_kmh:
            lo, hi = cfg.severe_over_low_kmh if severe else cfg.moderate_over_low_kmh
        else:
            lo, hi = cfg.severe_over_high_kmh if severe else cfg.moderate_over_high_kmh
        over_kmh = lo + (hi - lo) * u()
    if over_kmh > 0:
        vc = (limit_kmh + over_kmh) / 3.6
        return vc, over_kmh if u() < cfg.speeding_continue_prob else 0.0
    limit = limit_kmh / 3.6
    factor = p.cruise_factor * (1.0 + 0.03 * _normalish(u))
    return max(min(limit * factor, limit - jitter), limit * 0.6), 0.0


def _block(
    pl: _Planner, p: DriverProfile, cfg: SimConfig, u: Callable[[], float], rt: RoadType, limit: float,
    blk: float, v: float, jitter: float, cum_m: float, hb: list[float], ha: list[float],
    over_kmh: float, *, last_of_leg: bool, last_of_trip: bool,
) -> tuple[float, float]:
    """Plan one block (junction to junction); return the speed at its end (m/s) and the speeding
    excess (km/h) that carries on into the next block."""
    vc, over_kmh = _cruise_speed(p, cfg, u, limit * 3.6, jitter, over_kmh)
    peak_cap = cfg.max_normal_peak_mps2
    left = blk - pl.ramp(v, vc, min(p.accel_peak_mps2 * (0.85 + 0.3 * u()), peak_cap), NORMAL_TAU_S)
    # What happens at the junction that ends this block.
    event, v_out, dtheta, lateral, harsh_turn = "straight", vc, 0.0, 0.0, False
    r = u()
    if last_of_trip:
        event = "end"
    elif r < rt.p_red_light:
        event, v_out = "red", 0.0
    elif r < rt.p_red_light + rt.p_stop_sign:
        event, v_out = "stop", 0.0
    elif r < rt.p_red_light + rt.p_stop_sign + (0.6 if last_of_leg else rt.p_turn):
        harsh = u() < p.harsh_cornering_prob
        lo, hi = cfg.harsh_turn_speed_kmh if harsh else cfg.normal_turn_speed_kmh
        v_out = min((lo + (hi - lo) * u()) / 3.6, vc)
        if harsh:
            lat_lo, lat_hi = cfg.harsh_turn_lateral_mps2
            lateral = lat_lo + (lat_hi - lat_lo) * u()
        else:
            lateral = p.turn_lateral_mps2 * (0.8 + 0.2 * u())
        event, dtheta, harsh_turn = "turn", _signed_turn(u, harsh), harsh
    dec_peak = min(p.decel_peak_mps2 * (0.85 + 0.3 * u()), peak_cap)
    # Harsh incidents (a car cuts in / an aggressive overtake) whose route position falls here.
    end_m = cum_m + blk
    while hb and hb[0] < end_m:
        hb.pop(0)
        left -= _harsh_brake(pl, p, cfg, u, vc)
    while ha and ha[0] < end_m:
        ha.pop(0)
        left -= _harsh_accel(pl, p, cfg, u, vc, dec_peak)
    dec_m = 0.0 if event in ("straight", "end") else (vc + v_out) / 2 * (abs(vc - v_out) / dec_peak + NORMAL_TAU_S)
    hold_s = max(max(left - dec_m, 0.0) / vc, 1.0)
    # Gentle curve; its yaw peak keeps the lateral acceleration under MAX_CURVE_LATERAL_MPS2.
    curve_cap = MAX_CURVE_LATERAL_MPS2 * 0.75 * hold_s / vc
    curve = min(max(math.radians(rt.curve_sd_deg) * _normalish(u), -curve_cap), curve_cap)
    pl.hold(vc, hold_s, curve)
    if event == "straight" or event == "end":
        return vc, over_kmh
    pl.ramp(vc, v_out, dec_peak, NORMAL_TAU_S)
    if event == "red":
        lo, hi = cfg.red_light_stop_s
        pl.hold(0.0, lo + (hi - lo) * u())
    elif event == "stop":
        lo, hi = cfg.stop_sign_s
        pl.hold(0.0, lo + (hi - lo) * u())
    else:
        pl.turn(v_out, dtheta, lateral, KIND_HARSH_TURN if harsh_turn else KIND_TURN)
    return v_out, over_kmh


def _harsh_brake(pl: _Planner, p: DriverProfile, cfg: SimConfig, u: Callable[[], float], vc: float) -> float:
    lo, hi = cfg.harsh_speed_drop_mps
    v_low = max(vc - (lo + (hi - lo) * u()), 0.0)
    plo, phi = cfg.harsh_braking_peak_mps2
    d = pl.ramp(vc, v_low, plo + (phi - plo) * u(), HARSH_TAU_S, KIND_HARSH_BRAKE)
    d += pl.hold(v_low, 1.0 + 3.0 * u())
    return d + pl.ramp(v_low, vc, p.accel_peak_mps2, NORMAL_TAU_S)


def _harsh_accel(
    pl: _Planner, p: DriverProfile, cfg: SimConfig, u: Callable[[], float], vc: float, dec_peak: float
) -> float:
    lo, hi = cfg.harsh_speed_drop_mps
    v_low = max(vc - (lo + (hi - lo) * u()), 0.0)
    d = pl.ramp(vc, v_low, dec_peak, NORMAL_TAU_S)
    d += pl.hold(v_low, 2.0 + 4.0 * u())
    plo, phi = cfg.harsh_acceleration_peak_mps2
    return d + pl.ramp(v_low, vc, plo + (phi - plo) * u(), HARSH_TAU_S, KIND_HARSH_ACCEL)
