"""Model inputs: the window-invariant part of `domain.features`, on a log scale. Pure numpy.

Training sees features over a `days`-day window; serving over `scoring_window_days`. Counts and sums
(trip_count, exposure_km, total_hours) grow with the window, so the model never sees them raw: it sees
km per trip instead (a ratio the window cancels out of), and trip_count only drives credibility.
crash_count is left out: detected crashes are so rare (1 driver in 2,000 over a 10-day window) that any
coefficient would be noise — it came out negative, i.e. "a crash makes you safer". Every input then goes
through log(x + offset): the truth is log-linear in these propensities; trees ignore monotone transforms.
"""

from __future__ import annotations

import msgspec
import numpy as np

from domain.features import FEATURE_NAMES

MODEL_INPUTS: tuple[str, ...] = (
    "annual_km",
    "avg_speed_kmh",
    "km_per_trip",
    "harsh_braking_per_100km",
    "harsh_acceleration_per_100km",
    "harsh_cornering_per_100km",
    "night_share",
    "speeding_moderate_share",
    "speeding_severe_share",
    "phone_use_share",
    "idle_share",
)
_COLUMN = {name: i for i, name in enumerate(FEATURE_NAMES)}


def check_features(features: np.ndarray) -> np.ndarray:
    """A float64 (n, len(FEATURE_NAMES)) matrix of finite values ≥ 0, or ValueError saying which row."""
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != len(FEATURE_NAMES):
        raise ValueError(f"expected features of shape (n, {len(FEATURE_NAMES)}), got {x.shape}")
    bad = ~np.isfinite(x).all(axis=1) | (x < 0).any(axis=1)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(f"features must be finite and ≥ 0; row {row} is {x[row].tolist()}")
    return x


def raw_inputs(features: np.ndarray) -> np.ndarray:
    """(n, len(FEATURE_NAMES)) features → (n, len(MODEL_INPUTS)) window-invariant inputs."""
    x = check_features(features)
    out = np.empty((len(x), len(MODEL_INPUTS)), dtype=np.float64)
    trips, km = x[:, _COLUMN["trip_count"]], x[:, _COLUMN["exposure_km"]]
    derived = {"km_per_trip": np.where(trips > 0, km / np.where(trips > 0, trips, 1.0), 0.0)}
    for j, name in enumerate(MODEL_INPUTS):
        out[:, j] = derived[name] if name in derived else x[:, _COLUMN[name]]
    return out


class InputTransform(msgspec.Struct, frozen=True):
    """t_j = log(raw_j + offsets_j); offsets > 0 keep zeros finite. Fitted on the training drivers."""

    offsets: tuple[float, ...]

    def apply(self, raw: np.ndarray) -> np.ndarray:
        return np.log(raw + np.asarray(self.offsets, dtype=np.float64))


def fit_transform(raw: np.ndarray) -> InputTransform:
    """Offset = a tenth of the input's mean over drivers that have it (1e-6 if none): small enough
    to keep the log shape over the observed range, large enough that a zero is not an outlier."""
    offsets = []
    for j in range(raw.shape[1]):
        positive = raw[:, j][raw[:, j] > 0]
        offsets.append(float(max(0.1 * positive.mean(), 1e-6)) if len(positive) else 1e-6)
    return InputTransform(tuple(offsets))
