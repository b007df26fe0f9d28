"""`RiskPredictor`: a loaded model turned into `RiskAssessment`s, one vectorized pass per batch. Pure.

Deterministic: the same features and model version give the same assessment bit for bit, whatever
batch they come in (see `rate_model`). A driver without trips (trip_count 0, e.g. the all-zero vector)
gets credibility 0, model_rate = prior_rate and no factors: there is nothing of theirs to weigh.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from domain.features import FEATURE_NAMES, feature_hash
from domain.pricing import band_for
from domain.risk_assessment import (
    MILEAGE_ONLY_CREDIBILITY,
    POSITION_DERIVED_INPUTS,
    FactorContribution,
    RiskAssessment,
    ScoreRequest,
    credibility,
)
from domain.risk_model.inputs import MODEL_INPUTS, InputTransform, raw_inputs
from domain.risk_model.rate_model import RateModel, rate_to_score
from domain.risk_model.spec import ModelSpec

TOP_FACTORS = 3
_TRIPS = FEATURE_NAMES.index("trip_count")
_POSITION_DERIVED = [MODEL_INPUTS.index(name) for name in POSITION_DERIVED_INPUTS]


class RiskPredictor:
    """Built from an artifact's spec, its fitted estimator and its version name."""

    def __init__(self, spec: ModelSpec, estimator: object, model_version: str) -> None:
        if tuple(spec.feature_names) != FEATURE_NAMES or tuple(spec.model_inputs) != MODEL_INPUTS:
            raise ValueError(
                f"model {model_version} was trained on other features ({spec.feature_spec_version}); retrain it"
            )
        self.spec = spec
        self.model_version = model_version
        self.model = RateModel(spec.family, estimator, spec.reference_inputs)
        self.transform = InputTransform(spec.input_offsets)

    @property
    def family(self) -> str:
        return self.spec.family

    @property
    def prior_rate(self) -> float:
        return self.spec.prior_rate

    def assess_many(self, requests: Sequence[ScoreRequest], *, k_trips: float) -> list[RiskAssessment]:
        """Score a batch: one log-rate pass (and, for the GBM, its explanation rows in the same call).
        Raises ValueError naming the driver for a vector of the wrong length or with a negative/non-finite value."""
        if not requests:
            return []
        x = self._matrix(requests)
        t = self.transform.apply(raw_inputs(x))
        mileage_only = np.array([r.mileage_only for r in requests], dtype=bool)
        if mileage_only.any():  # the portfolio's value: their contribution is exactly 0 (docs/SCORING.md)
            reference = np.asarray(self.spec.reference_inputs, dtype=np.float64)
            t[np.ix_(mileage_only, _POSITION_DERIVED)] = reference[_POSITION_DERIVED]
        log_rate, contrib = self.model.log_rate_and_contributions(t)
        prior = self.spec.prior_rate
        trips = x[:, _TRIPS]
        has_trips = trips > 0
        model_rate = np.where(has_trips, np.exp(log_rate), prior)
        z = np.array([credibility(n, k_trips) for n in trips.tolist()])
        z = np.where(mileage_only, z * MILEAGE_ONLY_CREDIBILITY, z)
        rate = z * model_rate + (1.0 - z) * prior
        scores = np.round(rate_to_score(rate, self.spec.score_quantile_rates), 2)
        out = []
        for i, request in enumerate(requests):
            score = float(scores[i])
            out.append(RiskAssessment(
                driver_id=request.driver_id,
                model_version=self.model_version,
                feature_hash=feature_hash(x[i]),
                score=score,
                band=band_for(score).name,
                rate=float(rate[i]),
                model_rate=float(model_rate[i]),
                prior_rate=prior,
                credibility=float(z[i]),
                top_factors=_top_factors(contrib[i]) if has_trips[i] else (),
                mileage_only=bool(mileage_only[i]),
            ))
        return out

    @staticmethod
    def _matrix(requests: Sequence[ScoreRequest]) -> np.ndarray:
        width = len(FEATURE_NAMES)
        for r in requests:
            if len(r.features) != width:
                raise ValueError(f"driver {r.driver_id}: expected {width} features, got {len(r.features)}")
        x = np.array([r.features for r in requests], dtype=np.float64)
        bad = ~np.isfinite(x).all(axis=1) | (x < 0).any(axis=1)
        if bad.any():
            raise ValueError(f"driver {requests[int(np.flatnonzero(bad)[0])].driver_id}: features must be finite "
                             "and ≥ 0")
        return x


def _top_factors(contributions: np.ndarray) -> tuple[FactorContribution, ...]:
    """The TOP_FACTORS inputs with the largest |contribution| (ties: input order), rounded to 4 decimals."""
    rounded = np.round(contributions, 4)
    order = np.lexsort((np.arange(len(rounded)), -np.abs(rounded)))[:TOP_FACTORS]
    return tuple(FactorContribution(MODEL_INPUTS[j], float(rounded[j]) + 0.0) for j in order.tolist())
