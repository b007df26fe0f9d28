"""Risk features from trip summaries: one function for training and serving. Pure, deterministic.

`driver_features(trips, window_days)` aggregates a driver's `TripSummary`s over an observation
window into `DriverFeatures`; `to_vector()` gives them in `FEATURE_NAMES` order and `feature_hash()`
fingerprints the rounded vector with `FEATURE_SPEC_VERSION` (a model records the hash of what it
saw; serving can prove it fed the same numbers). Rates are ratios of sums (not means of per-trip
rates), so long trips weigh by their exposure; sums use `math.fsum`, so trip order never matters.

Harsh rates count the episodes a `TripSummary` counts as harsh: grades medium and high (issue 12). Low-grade
episodes are recorded (events, `harsh_*_low_count`) but carry no weight in features or scoring; summaries
written before grades existed count all their episodes, which were medium. The feature names, order and
formulas are unchanged, hence FEATURE_SPEC_VERSION too (docs/DOMAIN.md §4.2).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import msgspec
import numpy as np

from domain.trip_summary import TripSummary

FEATURE_SPEC_VERSION = "driver-features/1"
DAYS_PER_YEAR = 365.0

FEATURE_NAMES: tuple[str, ...] = (
    "trip_count",  # trips in the window
    "exposure_km",  # Σ distance (km)
    "total_hours",  # Σ trip duration, idle included (h)
    "annual_km",  # exposure_km · 365 / window_days (km per year)
    "avg_speed_kmh",  # exposure_km / moving hours (km/h); moving = duration − idle
    "harsh_braking_per_100km",  # episodes per 100 km: the summary's counts, grades medium and high only
    "harsh_acceleration_per_100km",
    "harsh_cornering_per_100km",
    "crash_count",  # detected crashes in the window
    "night_share",  # Σ night_s / Σ duration_s
    "speeding_moderate_share",  # Σ speeding_moderate_s / Σ moving s
    "speeding_severe_share",  # Σ speeding_severe_s / Σ moving s
    "phone_use_share",  # Σ phone_use_moving_s / Σ moving s
    "idle_share",  # Σ idle_s / Σ duration_s
)


class DriverFeatures(msgspec.Struct, frozen=True, kw_only=True):
    """A driver's features over `window_days`. Units in names; shares in [0, 1]; all finite, ≥ 0."""

    trip_count: float
    exposure_km: float
    total_hours: float
    annual_km: float
    avg_speed_kmh: float
    harsh_braking_per_100km: float
    harsh_acceleration_per_100km: float
    harsh_cornering_per_100km: float
    crash_count: float
    night_share: float
    speeding_moderate_share: float
    speeding_severe_share: float
    phone_use_share: float
    idle_share: float
    window_days: float  # context, not a model input

    def to_vector(self) -> np.ndarray:
        """float64 vector in `FEATURE_NAMES` order."""
        return np.array([getattr(self, name) for name in FEATURE_NAMES], dtype=np.float64)

    def feature_hash(self) -> str:
        """sha256 hex of the spec version, the names and the vector rounded to 6 decimals."""
        return feature_hash(self.to_vector())


def feature_hash(vector: np.ndarray) -> str:
    """sha256 of `FEATURE_SPEC_VERSION`, `FEATURE_NAMES` and `vector` rounded to 6 decimals."""
    if vector.shape != (len(FEATURE_NAMES),):
        raise ValueError(f"expected a vector of {len(FEATURE_NAMES)} features, got shape {vector.shape}")
    parts = []
    for x in vector.tolist():
        r = round(x, 6)
        parts.append(format(r if r != 0 else 0.0, ".6f"))  # no "-0.000000"
    text = "|".join((FEATURE_SPEC_VERSION, ",".join(FEATURE_NAMES), ",".join(parts)))
    return hashlib.sha256(text.encode()).hexdigest()


class TripFeatures(msgspec.Struct, frozen=True, kw_only=True):
    """One trip's features, for a trip's detail page. Same definitions as the driver aggregates."""

    distance_km: float
    duration_h: float
    moving_h: float
    avg_speed_kmh: float
    max_speed_kmh: float
    harsh_braking_per_100km: float
    harsh_acceleration_per_100km: float
    harsh_cornering_per_100km: float
    crash_count: int
    night_share: float
    speeding_moderate_share: float
    speeding_severe_share: float
    phone_use_share: float
    idle_share: float


def annualized_km(km: float, window_days: float) -> float:
    """km driven in `window_days`, as km per year: the exposure pricing charges per km."""
    return km * DAYS_PER_YEAR / window_days


def _moving_s(t: TripSummary) -> float:
    return max(t.duration_s - t.idle_s, 0.0)


def _per_100km(count: float, km: float) -> float:
    return 100.0 * count / km if km > 0 else 0.0


def _share(part: float, whole: float) -> float:
    return min(max(part / whole, 0.0), 1.0) if whole > 0 else 0.0


def trip_features(trip: TripSummary) -> TripFeatures:
    """Features of one trip. Pure; zero distance or duration gives zero rates and shares."""
    km = max(trip.distance_m, 0.0) / 1000.0
    moving_s = _moving_s(trip)
    return TripFeatures(
        distance_km=km,
        duration_h=trip.duration_s / 3600.0,
        moving_h=moving_s / 3600.0,
        avg_speed_kmh=km / (moving_s / 3600.0) if moving_s > 0 else 0.0,
        max_speed_kmh=trip.max_speed_kmh,
        harsh_braking_per_100km=_per_100km(trip.harsh_braking_count, km),
        harsh_acceleration_per_100km=_per_100km(trip.harsh_acceleration_count, km),
        harsh_cornering_per_100km=_per_100km(trip.harsh_cornering_count, km),
        crash_count=trip.crash_count,
        night_share=_share(trip.night_s, trip.duration_s),
        speeding_moderate_share=_share(trip.speeding_moderate_s, moving_s),
        speeding_severe_share=_share(trip.speeding_severe_s, moving_s),
        phone_use_share=_share(trip.phone_use_moving_s, moving_s),
        idle_share=_share(trip.idle_s, trip.duration_s),
    )


def driver_features(trips: Sequence[TripSummary], window_days: float) -> DriverFeatures:
    """Aggregate one driver's trips observed over `window_days` (> 0). Pure.

    Zero trips give a valid vector (zero exposure, zero rates). Trips of several drivers are a
    caller bug and raise ValueError.
    """
    if not (math.isfinite(window_days) and window_days > 0):
        raise ValueError(f"window_days must be a finite number > 0, got {window_days!r}")
    drivers = {t.driver_id for t in trips}
    if len(drivers) > 1:
        raise ValueError(f"driver_features takes one driver's trips, got {len(drivers)} drivers")

    km = math.fsum([max(t.distance_m, 0.0) for t in trips]) / 1000.0
    duration_s = math.fsum([max(t.duration_s, 0.0) for t in trips])
    moving_s = math.fsum([_moving_s(t) for t in trips])
    return DriverFeatures(
        trip_count=float(len(trips)),
        exposure_km=km,
        total_hours=duration_s / 3600.0,
        annual_km=annualized_km(km, window_days),
        avg_speed_kmh=km / (moving_s / 3600.0) if moving_s > 0 else 0.0,
        harsh_braking_per_100km=_per_100km(sum(t.harsh_braking_count for t in trips), km),
        harsh_acceleration_per_100km=_per_100km(sum(t.harsh_acceleration_count for t in trips), km),
        harsh_cornering_per_100km=_per_100km(sum(t.harsh_cornering_count for t in trips), km),
        crash_count=float(sum(t.crash_count for t in trips)),
        night_share=_share(math.fsum([t.night_s for t in trips]), duration_s),
        speeding_moderate_share=_share(math.fsum([t.speeding_moderate_s for t in trips]), moving_s),
        speeding_severe_share=_share(math.fsum([t.speeding_severe_s for t in trips]), moving_s),
        phone_use_share=_share(math.fsum([t.phone_use_moving_s for t in trips]), moving_s),
        idle_share=_share(math.fsum([t.idle_s for t in trips]), duration_s),
        window_days=float(window_days),
    )


def feature_matrix(features: Sequence[DriverFeatures]) -> np.ndarray:
    """Rows of `to_vector()`: shape (len(features), len(FEATURE_NAMES)), float64."""
    out = np.zeros((len(features), len(FEATURE_NAMES)), dtype=np.float64)
    for i, f in enumerate(features):
        out[i] = f.to_vector()
    return out
