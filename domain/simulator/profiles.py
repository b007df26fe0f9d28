"""Driver risk profiles: one latent risk `z` plus independent noise → behavioural propensities.

Pure and deterministic: `profile_from_latents` is a plain function of its inputs, and
`draw_profile(seed, driver_no)` seeds its own numpy Generator from (seed, driver_no), so a driver's
profile does not depend on how many drivers are generated or in which order.

Every propensity below is what the trip generator (`trips.py`) actually uses, and what the ground
truth (`truth.py`) is written in, so features detected from the readings can recover the truth.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from functools import lru_cache

import msgspec
import numpy as np

_PROFILE_STREAM = 0x50F1  # separates the profile RNG stream from the simulation streams
M_PER_DEG_LAT = 111_195.0  # metres per degree of latitude (spherical Earth, R = 6 371 km)


class Zone(msgspec.Struct, frozen=True):
    """A home timezone (IANA name), its standard UTC offset in minutes and a home city centre."""

    name: str
    std_offset_min: int
    city_lat: float
    city_lon: float


# All EU zones: one DST rule (last Sunday of March → last Sunday of October, 01:00 UTC) covers
# them, so local time is computed without tzdata (pure, identical on every machine).
ZONES: tuple[Zone, ...] = (
    Zone("Europe/London", 0, 51.5074, -0.1278),
    Zone("Europe/Lisbon", 0, 38.7223, -9.1393),
    Zone("Europe/Paris", 60, 48.8566, 2.3522),
    Zone("Europe/Berlin", 60, 52.5200, 13.4050),
    Zone("Europe/Madrid", 60, 40.4168, -3.7038),
    Zone("Europe/Athens", 120, 37.9838, 23.7275),
)
ZONE_WEIGHTS = (0.2, 0.1, 0.2, 0.25, 0.15, 0.1)


def _last_sunday_ms(year: int, month: int, last_day: int) -> int:
    d = datetime(year, month, last_day, 1, 0, tzinfo=UTC)
    d -= timedelta(days=(d.weekday() - 6) % 7)
    return int(d.timestamp()) * 1000


@lru_cache(maxsize=256)
def _eu_dst_window_ms(year: int) -> tuple[int, int]:
    return _last_sunday_ms(year, 3, 31), _last_sunday_ms(year, 10, 31)


def utc_offset_ms(zone: Zone, ts_ms: int) -> int:
    """UTC offset of `zone` at instant `ts_ms` (epoch ms), EU summer time included. Pure."""
    year = datetime.fromtimestamp(ts_ms / 1000, tz=UTC).year
    start, end = _eu_dst_window_ms(year)
    dst = 3_600_000 if start <= ts_ms < end else 0
    return zone.std_offset_min * 60_000 + dst


class DriverProfile(msgspec.Struct, frozen=True, kw_only=True):
    """Latent risk and the behavioural propensities the simulator drives with. Units in names.

    Trait scores (`aggressiveness`, `speeding`, `night`, `phone`, `mileage`) are standard normal;
    each is `rho·z + sqrt(1-rho²)·noise`. Invariant: every propensity is non-decreasing in `z`
    for fixed noise.
    """

    driver_no: int
    latent_risk_z: float
    aggressiveness: float
    speeding: float
    night: float
    phone: float
    mileage: float
    zone: Zone
    home_lat: float
    home_lon: float
    has_lateral_sensor: bool
    annual_km: float
    median_trip_km: float
    trips_per_day: float
    highway_affinity: float  # probability a trip ≥ 12 km uses a highway
    cruise_factor: float  # normal cruising speed / limit
    accel_peak_mps2: float  # normal (non-harsh) acceleration peak
    decel_peak_mps2: float  # normal (non-harsh) braking peak
    turn_lateral_mps2: float  # normal cornering lateral peak
    harsh_braking_per_100km: float
    harsh_acceleration_per_100km: float
    harsh_cornering_prob: float  # per turn
    speeding_prob: float  # per road block: a speeding episode starts (it may run on, SimConfig)
    severe_speeding_prob: float  # given a speeding episode: severe
    night_trip_prob: float  # per trip: started in the night window (SimConfig: 23:00–02:30 local)
    phone_episodes_per_h: float  # per moving hour
    crash_per_driving_h: float = 0.0  # set by Population from the truth model

    @property
    def driver_id(self) -> str:
        return driver_id(self.driver_no)


def vehicle_use(profile: DriverProfile) -> str:
    """The demo policy's vehicle use (domain.fairness.VEHICLE_USES), from the mileage trait (standard normal), so
    the fairness cohorts have a spread that goes with driving: about 38 % personal, 41 % commute, 11 % business,
    10 % rideshare."""
    m = profile.mileage
    return "rideshare" if m > 1.3 else "business" if m > 0.8 else "commute" if m > -0.3 else "personal"


def driver_id(driver_no: int) -> str:
    """`driver0001` … : the demo login of driver number `driver_no` (1-based)."""
    return f"driver{driver_no:04d}"


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


# (trait, correlation with z). Noise order in `eps` follows this tuple, then trip length,
# cruise, accel, decel, turn, highway noises.
TRAIT_LOADINGS: tuple[tuple[str, float], ...] = (
    ("aggressiveness", 0.80),
    ("speeding", 0.70),
    ("night", 0.50),
    ("phone", 0.60),
    ("mileage", 0.20),
)
N_EPS = len(TRAIT_LOADINGS) + 6

# Log-trip length spread: trip km = median × exp(σ·N(0,1)), so mean = median × exp(σ²/2).
TRIP_KM_SIGMA = 0.6
MEDIAN_ANNUAL_KM = 12_000.0


def profile_from_latents(
    driver_no: int, z: float, eps: np.ndarray, zone: Zone, home_lat: float, home_lon: float, has_lateral: bool
) -> DriverProfile:
    """Map latent risk `z` and `N_EPS` standard-normal noises to a profile. Pure.

    Formulas (documented in docs/SIMULATOR.md §2): rates are log-linear, probabilities logistic.
    """
    e = [float(x) for x in eps]
    t = {name: rho * z + math.sqrt(1 - rho * rho) * e[i] for i, (name, rho) in enumerate(TRAIT_LOADINGS)}
    g, s, n, p, m = t["aggressiveness"], t["speeding"], t["night"], t["phone"], t["mileage"]
    e_trip, e_cruise, e_acc, e_dec, e_turn, e_hwy = e[5:11]
    annual_km = MEDIAN_ANNUAL_KM * math.exp(0.45 * m)
    median_trip_km = min(max(11.0 * math.exp(0.30 * e_trip), 4.0), 40.0)
    mean_trip_km = median_trip_km * math.exp(TRIP_KM_SIGMA**2 / 2)
    return DriverProfile(
        driver_no=driver_no,
        latent_risk_z=float(z),
        aggressiveness=g,
        speeding=s,
        night=n,
        phone=p,
        mileage=m,
        zone=zone,
        home_lat=home_lat,
        home_lon=home_lon,
        has_lateral_sensor=has_lateral,
        annual_km=annual_km,
        median_trip_km=median_trip_km,
        trips_per_day=annual_km / 365.0 / mean_trip_km,
        highway_affinity=_sigmoid(0.8 + 0.8 * e_hwy),
        cruise_factor=min(max(0.92 + 0.025 * s + 0.02 * e_cruise, 0.80), 0.985),
        accel_peak_mps2=min(max(1.7 + 0.25 * g + 0.15 * e_acc, 0.9), 2.5),
        decel_peak_mps2=min(max(1.9 + 0.25 * g + 0.15 * e_dec, 1.0), 2.5),
        turn_lateral_mps2=min(max(1.8 + 0.25 * g + 0.2 * e_turn, 1.0), 2.6),
        harsh_braking_per_100km=1.0 * math.exp(0.75 * g),
        harsh_acceleration_per_100km=0.8 * math.exp(0.75 * g),
        harsh_cornering_prob=_sigmoid(-3.8 + 0.9 * g),
        speeding_prob=_sigmoid(-2.6 + 0.9 * s),
        severe_speeding_prob=_sigmoid(-1.2 + 0.7 * s),
        night_trip_prob=_sigmoid(-2.5 + 0.8 * n),
        phone_episodes_per_h=2.0 * math.exp(0.8 * p),
    )


def draw_profile(seed: int, driver_no: int) -> DriverProfile:
    """Draw driver `driver_no`'s profile from its own RNG stream (seed, driver_no). Pure."""
    rng = np.random.default_rng([seed, driver_no, _PROFILE_STREAM])
    z = float(rng.standard_normal())
    eps = rng.standard_normal(N_EPS)
    zone = ZONES[int(rng.choice(len(ZONES), p=ZONE_WEIGHTS))]
    north_m, east_m = rng.normal(0.0, 6_000.0, 2)
    home_lat = zone.city_lat + north_m / M_PER_DEG_LAT
    home_lon = zone.city_lon + east_m / (M_PER_DEG_LAT * math.cos(math.radians(zone.city_lat)))
    has_lateral = bool(rng.random() < 0.7)
    return profile_from_latents(driver_no, z, eps, zone, home_lat, home_lon, has_lateral)
