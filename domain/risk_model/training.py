"""Fit claim frequency on a labelled set: a Poisson GLM and a Poisson GBM, keep the better one. Pure.

Target y = claims / exposure with exposure as sample weight (the Poisson frequency set-up of the
sklearn "Poisson regression and non-normal loss" example). Drivers are cut, seeded, into K folds;
every driver gets an out-of-fold prediction (a model that never saw them), the family with the lower
out-of-fold Poisson deviance wins, and its out-of-fold predictions give the reported metrics (two
candidates: the selection bias is negligible). The winner is then refitted on every driver.
Deterministic for `params.seed`: fixed random_state, no early stopping, one BLAS/OpenMP thread
(also faster on a busy 2-core machine than sklearn's default threading).
"""

from __future__ import annotations

import msgspec
import numpy as np
import sklearn
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import PoissonRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from domain.fairness import reference_bins
from domain.risk_model.dataset import LabelledSet
from domain.risk_model.inputs import MODEL_INPUTS, fit_transform, raw_inputs
from domain.risk_model.metrics import decile_table, normalized_gini, poisson_deviance
from domain.risk_model.rate_model import RateModel, score_quantiles
from domain.risk_model.spec import FAMILIES, ModelSpec, TrainingParams

_SPLIT_STREAM = 0x5B117


class OutOfFold(msgspec.Struct, frozen=True, kw_only=True):
    """Every driver's out-of-fold predicted rate with their truth and claims: what the report plots."""

    driver_ids: tuple[str, ...]
    predicted_rate: np.ndarray
    true_rate: np.ndarray
    claims: np.ndarray
    exposure_years: np.ndarray


class TrainingResult(msgspec.Struct, frozen=True, kw_only=True):
    spec: ModelSpec
    estimator: object
    out_of_fold: OutOfFold
    deciles: list[dict]


def driver_folds(n: int, folds: int, seed: int) -> list[np.ndarray]:
    """`folds` disjoint, sorted row sets covering 0 … n−1: a seeded permutation of the drivers, cut evenly."""
    if not 2 <= folds <= n:
        raise ValueError(f"folds must be in 2 … {n}, got {folds}")
    perm = np.random.default_rng([seed, _SPLIT_STREAM]).permutation(n)
    return [np.sort(part) for part in np.array_split(perm, folds)]


def _glm(params: TrainingParams) -> Pipeline:
    return Pipeline([
        ("scale", StandardScaler()),
        ("glm", PoissonRegressor(alpha=params.glm_alpha, solver="newton-cholesky", max_iter=300)),
    ])


def _gbm(params: TrainingParams) -> HistGradientBoostingRegressor:
    return HistGradientBoostingRegressor(
        loss="poisson",
        max_iter=params.gbm_max_iter,
        learning_rate=params.gbm_learning_rate,
        max_leaf_nodes=params.gbm_max_leaf_nodes,
        min_samples_leaf=params.gbm_min_samples_leaf,
        l2_regularization=params.gbm_l2_regularization,
        early_stopping=False,
        random_state=params.seed,
    )


def _fit(family: str, t: np.ndarray, data: LabelledSet, params: TrainingParams) -> object:
    y, w = data.claims / data.exposure_years, data.exposure_years
    if family == "glm":
        return _glm(params).fit(t, y, glm__sample_weight=w)
    return _gbm(params).fit(t, y, sample_weight=w)


def _oof_rates(family: str, t: np.ndarray, data: LabelledSet, folds: list[np.ndarray],
               params: TrainingParams) -> np.ndarray:
    """Out-of-fold predicted rates: each driver's rate from the model fitted without their fold."""
    rates = np.empty(len(data), dtype=np.float64)
    everyone = np.arange(len(data))
    for rows in folds:
        fit_rows = np.setdiff1d(everyone, rows, assume_unique=True)
        estimator = _fit(family, t[fit_rows], data.take(fit_rows), params)
        rates[rows] = np.exp(_log_rate(family, estimator, t[rows]))
    return rates


def _log_rate(family: str, estimator: object, t: np.ndarray) -> np.ndarray:
    return RateModel(family, estimator).log_rate(t)


def train(data: LabelledSet, params: TrainingParams, dataset_info: dict[str, float]) -> TrainingResult:
    """Pick the family with the lower out-of-fold Poisson deviance (K folds of drivers), report its
    out-of-fold metrics, then refit it on every driver: that refit is the artifact's model."""
    if len(data) < 2 * params.folds or data.claims.sum() <= 0:
        raise ValueError(f"need at least {2 * params.folds} drivers and some claims to train, got {len(data)} "
                         f"drivers and {data.claims.sum():g} claims")
    with threadpool_limits(limits=1):
        return _train(data, params, dataset_info)


def _train(data: LabelledSet, params: TrainingParams, dataset_info: dict[str, float]) -> TrainingResult:
    raw = raw_inputs(data.features)
    transform = fit_transform(raw)
    t = transform.apply(raw)
    reference = tuple(float(x) for x in t.mean(axis=0))
    prior_rate = float(data.claims.sum() / data.exposure_years.sum())
    folds = driver_folds(len(data), params.folds, params.seed)
    oof = {family: _oof_rates(family, t, data, folds, params) for family in FAMILIES}
    deviance = {f: poisson_deviance(data.claims, data.exposure_years, rate) for f, rate in oof.items()}
    family = min(FAMILIES, key=lambda f: (deviance[f], f))
    estimator = _fit(family, t, data, params)
    all_rates = np.exp(_log_rate(family, estimator, t))
    metrics = _metrics(data, oof[family], prior_rate)
    spec = _spec(family, transform.offsets, reference, prior_rate, score_quantiles(all_rates), metrics, deviance,
                 params, dataset_info, reference_bins(MODEL_INPUTS, raw))
    out_of_fold = OutOfFold(driver_ids=data.driver_ids, predicted_rate=oof[family], true_rate=data.true_rate,
                            claims=data.claims, exposure_years=data.exposure_years)
    deciles = decile_table(oof[family], data.true_rate, data.claims, data.exposure_years)
    return TrainingResult(spec=spec, estimator=estimator, out_of_fold=out_of_fold, deciles=deciles)


def _metrics(test: LabelledSet, rate: np.ndarray, prior_rate: float) -> dict[str, float]:
    """Out-of-fold figures (every driver held out once). gini = model vs realized claims; oracle_gini =
    true λ vs the same claims; gini_vs_truth = model vs true λ; gini_ratio = gini / oracle_gini (≥ 0.9)."""
    gini = normalized_gini(test.claims, rate)
    oracle = normalized_gini(test.claims, test.true_rate)
    return {
        "gini": round(gini, 6),
        "oracle_gini": round(oracle, 6),
        "gini_ratio": round(gini / oracle, 6) if oracle > 0 else 0.0,
        "gini_vs_truth": round(normalized_gini(test.true_rate, rate), 6),
        "poisson_deviance": round(poisson_deviance(test.claims, test.exposure_years, rate), 6),
        "oracle_poisson_deviance": round(poisson_deviance(test.claims, test.exposure_years, test.true_rate), 6),
        "null_poisson_deviance": round(
            poisson_deviance(test.claims, test.exposure_years, np.full(len(test), prior_rate)), 6),
        "drivers": float(len(test)),
        "claims": float(test.claims.sum()),
    }


def _spec(family, offsets, reference, prior_rate, quantiles, metrics, candidates, params, dataset_info,
          input_reference) -> ModelSpec:
    return ModelSpec(
        family=family,
        input_offsets=offsets,
        reference_inputs=reference,
        prior_rate=prior_rate,
        score_quantile_rates=tuple(quantiles),
        metrics=metrics,
        candidates={k: round(v, 6) for k, v in candidates.items()},
        params=params,
        dataset=dataset_info,
        sklearn_version=sklearn.__version__,
        input_reference=input_reference,
    )
