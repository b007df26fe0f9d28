"""Road types and the simulator's tunable constants (a frozen config with documented defaults). Pure data."""

from __future__ import annotations

import msgspec


class RoadType(msgspec.Struct, frozen=True):
    """A road class: its possible speed limits (km/h), block length range (m) between junctions and
    the probabilities of what happens at a junction (red light, stop sign, turn; else straight on)."""

    name: str
    limits_kmh: tuple[float, ...]
    block_m: tuple[float, float]
    p_red_light: float
    p_stop_sign: float
    p_turn: float
    curve_sd_deg: float  # heading drift over a block (gentle curves), standard deviation


RESIDENTIAL = RoadType("residential", (30.0, 40.0, 50.0), (120.0, 350.0), 0.0, 0.25, 0.30, 5.0)
URBAN = RoadType("urban", (50.0,), (150.0, 450.0), 0.20, 0.05, 0.25, 5.0)
ARTERIAL = RoadType("arterial", (70.0,), (400.0, 1500.0), 0.15, 0.0, 0.10, 10.0)
HIGHWAY = RoadType("highway", (100.0, 110.0, 120.0, 130.0), (2000.0, 9000.0), 0.0, 0.0, 0.0, 12.0)
ROAD_TYPES = (RESIDENTIAL, URBAN, ARTERIAL, HIGHWAY)


class SimConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Simulator knobs that are not per-driver. Units in names; ranges are uniform [lo, hi]."""

    red_light_stop_s: tuple[float, float] = (30.0, 120.0)  # at 0 km/h, ignition stays on
    stop_sign_s: tuple[float, float] = (1.0, 3.0)
    start_idle_s: tuple[float, float] = (5.0, 60.0)  # ignition_on → first move
    end_idle_s: tuple[float, float] = (3.0, 30.0)  # stopped → ignition_off
    harsh_braking_peak_mps2: tuple[float, float] = (3.8, 6.5)
    harsh_acceleration_peak_mps2: tuple[float, float] = (3.6, 5.0)
    harsh_speed_drop_mps: tuple[float, float] = (10.0, 18.0)  # Δv of a harsh incident (capped at v)
    harsh_turn_speed_kmh: tuple[float, float] = (26.0, 36.0)
    harsh_turn_lateral_mps2: tuple[float, float] = (4.0, 5.5)
    normal_turn_speed_kmh: tuple[float, float] = (14.0, 24.0)
    # Speeding episode: km/h above the limit, by road class (limit ≤ split vs above). The ranges sit
    # just past the default TripRules margins (moderate 15/20, severe 30/40 km/h) so detection is crisp.
    speeding_split_limit_kmh: float = 85.0
    moderate_over_low_kmh: tuple[float, float] = (16.0, 29.0)
    severe_over_low_kmh: tuple[float, float] = (31.0, 45.0)
    moderate_over_high_kmh: tuple[float, float] = (21.0, 39.0)
    severe_over_high_kmh: tuple[float, float] = (41.0, 55.0)
    speeding_continue_prob: float = 0.6  # an episode carries on into the next block of the same leg
    max_normal_peak_mps2: float = 2.7  # non-harsh accel/brake peaks stay below the ±3 m/s² thresholds
    phone_episode_s: tuple[float, float] = (5.0, 45.0)
    crash_accel_mps2: tuple[float, float] = (26.0, 45.0)  # ≥ 2.5 g = 24.5 m/s²
    crash_after_s: tuple[float, float] = (15.0, 90.0)  # stationary readings between crash and ignition_off
    max_trip_km: float = 150.0
    highway_min_trip_km: float = 12.0
    speed_jitter_mps: tuple[float, float] = (0.2, 0.6)  # slow speed wander amplitude while cruising
    accel_noise_mps2: float = 0.08  # sensor noise on accel_ms2 and lateral_accel_ms2
    crash_rate_scale: float = 1.0  # multiplies every driver's crash hazard (tests use ≫ 1)
    night_start_h: float = 23.0  # local hour window in which "night" trips start
    night_end_h: float = 26.5  # = 02:30 next day
    day_start_h: float = 5.0  # a driving day runs 05:00 → 05:00 local; no trip crosses it


DEFAULT_CONFIG = SimConfig()
