"""A fitted frequency model with its input transform: log rates, explanations, the score mapping. Pure.

Both families give log λ (claims/year) per row, one vectorized call per batch. The GLM's linear
predictor is computed here from its coefficients, elementwise then summed per row, so a row's value
never depends on which batch it came in (a BLAS matrix product may change summation order with the
batch shape); the GBM's trees are per-row by construction.
"""

from __future__ import annotations

import numpy as np

from domain.risk_model.spec import FAMILIES

SCORE_POINTS = 101


class RateModel:
    """Wraps the estimator of `spec.family`: a Pipeline(StandardScaler, PoissonRegressor) for "glm",
    a HistGradientBoostingRegressor(loss="poisson") for "gbm". Inputs are transformed model inputs."""

    def __init__(self, family: str, estimator: object, reference: tuple[float, ...] | None = None) -> None:
        if family not in FAMILIES:
            raise ValueError(f"unknown model family {family!r}; expected one of {FAMILIES}")
        self.family = family
        self.estimator = estimator
        self.reference = None if reference is None else np.asarray(reference, dtype=np.float64)
        if family == "glm":
            scaler, glm = estimator.named_steps["scale"], estimator.named_steps["glm"]  # type: ignore[attr-defined]
            self._mean = np.asarray(scaler.mean_, dtype=np.float64)
            self._scale = np.asarray(scaler.scale_, dtype=np.float64)
            self._coef = np.asarray(glm.coef_, dtype=np.float64)
            self._intercept = float(glm.intercept_)
            self._beta = self._coef / self._scale  # per transformed input

    def log_rate(self, t: np.ndarray) -> np.ndarray:
        """log λ for transformed inputs `t` (n, k)."""
        if self.family == "glm":
            return self._intercept + (((t - self._mean) / self._scale) * self._coef).sum(axis=1)
        return np.log(self.estimator.predict(t))  # type: ignore[attr-defined]

    def log_rate_and_contributions(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(log λ (n,), contributions (n, k)): contribution_j = log f(t) − log f(t with t_j := reference_j).
        For the GBM, every variant row goes into the same single predict call as the rows themselves."""
        if self.reference is None:
            raise ValueError("explanations need the reference inputs")
        if self.family == "glm":
            return self.log_rate(t), (t - self.reference) * self._beta
        n, k = t.shape
        variants = np.repeat(t[np.newaxis, :, :], k, axis=0)  # (k, n, k)
        for j in range(k):
            variants[j, :, j] = self.reference[j]
        log_all = self.log_rate(np.vstack([t, variants.reshape(k * n, k)]))
        base = log_all[:n]
        moved = log_all[n:].reshape(k, n).T  # (n, k)
        return base, base[:, np.newaxis] - moved


def score_quantiles(rates: np.ndarray) -> tuple[float, ...]:
    """The 101 percentiles of `rates`, made strictly increasing so the mapping is a function."""
    q = np.quantile(np.asarray(rates, dtype=np.float64), np.linspace(0.0, 1.0, SCORE_POINTS))
    q = np.maximum.accumulate(q)
    for i in range(1, len(q)):
        if q[i] <= q[i - 1]:
            q[i] = np.nextafter(q[i - 1], np.inf)
    return tuple(float(x) for x in q)


def rate_to_score(rate: np.ndarray, quantile_rates: tuple[float, ...]) -> np.ndarray:
    """Score in [0, 100]: the portfolio percentile of `rate`, linear in log rate between stored points;
    below the lowest → 0, above the highest → 100. Non-decreasing in rate; lower = safer."""
    xp = np.log(np.asarray(quantile_rates, dtype=np.float64))
    fp = np.linspace(0.0, 100.0, len(xp))
    return np.interp(np.log(np.maximum(rate, 1e-300)), xp, fp)
