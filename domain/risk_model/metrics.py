"""Ranking and fit metrics for claim frequency models. Pure numpy.

Normalized Gini (the Kaggle/actuarial definition): sort drivers by predicted rate, riskiest first
(ties by input order, so the value is deterministic), take the Lorenz curve of the *actual* values
(claims or true rates) and compare its area with that of the perfect ordering. 1 = perfect ranking,
0 = random. With equal exposure per driver, as in our datasets, no weighting is needed.
"""

from __future__ import annotations

import numpy as np


def _order(pred: np.ndarray) -> np.ndarray:
    return np.lexsort((np.arange(len(pred)), -np.asarray(pred, dtype=np.float64)))


def gini(actual: np.ndarray, pred: np.ndarray) -> float:
    """Unnormalized Gini of `actual` ordered by `pred` (descending). 0 if `actual` sums to 0."""
    actual = np.asarray(actual, dtype=np.float64)
    if actual.shape != np.shape(pred) or actual.ndim != 1 or len(actual) == 0:
        raise ValueError(f"actual and pred must be equal-length 1-d arrays, got {actual.shape}, {np.shape(pred)}")
    total = actual.sum()
    if total <= 0:
        return 0.0
    n = len(actual)
    cum = np.cumsum(actual[_order(pred)]) / total
    return float(cum.sum() / n - (n + 1) / (2 * n))


def normalized_gini(actual: np.ndarray, pred: np.ndarray) -> float:
    """gini(actual, pred) / gini(actual, actual): 1 for the ordering by `actual` itself."""
    best = gini(actual, actual)
    return gini(actual, pred) / best if best > 0 else 0.0


def lorenz_curve(actual: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(share of drivers, share of `actual`) from the riskiest predicted, both starting at 0."""
    actual = np.asarray(actual, dtype=np.float64)
    n = len(actual)
    cum = np.cumsum(actual[_order(pred)])
    total = cum[-1] if n and cum[-1] > 0 else 1.0
    return np.concatenate([[0.0], np.arange(1, n + 1) / n]), np.concatenate([[0.0], cum / total])


def poisson_deviance(claims: np.ndarray, exposure: np.ndarray, rate: np.ndarray) -> float:
    """Exposure-weighted mean Poisson deviance of claim frequency (claims/exposure) against `rate`;
    what sklearn's `mean_poisson_deviance(y/exposure, rate, sample_weight=exposure)` returns."""
    claims = np.asarray(claims, dtype=np.float64)
    mu = np.asarray(rate, dtype=np.float64) * exposure
    if np.any(mu <= 0):
        raise ValueError("predicted rates must be > 0")
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(claims > 0, claims * np.log(claims / mu), 0.0)
    return float(2.0 * np.sum(term - (claims - mu)) / np.sum(exposure))


def decile_table(pred: np.ndarray, true_rate: np.ndarray, claims: np.ndarray, exposure: np.ndarray) -> list[dict]:
    """Drivers in 10 groups by predicted rate (safest first): mean predicted, true and observed rate."""
    order = _order(pred)[::-1]
    rows = []
    for i, part in enumerate(np.array_split(order, 10)):
        if len(part) == 0:
            continue
        rows.append({
            "decile": i + 1,
            "drivers": len(part),
            "predicted_rate": float(np.mean(pred[part])),
            "true_rate": float(np.mean(true_rate[part])),
            "observed_rate": float(np.sum(claims[part]) / np.sum(exposure[part])),
        })
    return rows
