"""What an artifact's spec.json holds: everything but the fitted estimator. Pure data, JSON both ways."""

from __future__ import annotations

import msgspec

from domain.fairness import ReferenceBins
from domain.features import FEATURE_NAMES, FEATURE_SPEC_VERSION
from domain.risk_model.inputs import MODEL_INPUTS

SPEC_FORMAT = "autoins-risk-model/1"
FAMILIES = ("glm", "gbm")
EXPLANATION = (
    "log-rate contribution of each model input: log f(x) − log f(x with that input at the portfolio mean "
    "of the transformed inputs), the others kept at the driver's values; exactly coef·(t − mean) for the GLM"
)


class TrainingParams(msgspec.Struct, frozen=True, kw_only=True):
    """Fitting knobs. Every random choice is seeded from `seed`."""

    seed: int = 7
    folds: int = 5  # drivers cut into K folds: out-of-fold predictions for selection and metrics
    glm_alpha: float = 0.1  # L2 on standardized inputs: steadier coefficients from few claims
    gbm_max_iter: int = 150
    gbm_learning_rate: float = 0.05
    gbm_max_leaf_nodes: int = 8
    gbm_min_samples_leaf: int = 40
    gbm_l2_regularization: float = 1.0


class ModelSpec(msgspec.Struct, frozen=True, kw_only=True):
    """The artifact's description. Rates are expected claims per year; `score_quantile_rates` are the
    101 percentiles (0 %, 1 %, … 100 %) of the portfolio's predicted model rates: the score mapping."""

    format: str = SPEC_FORMAT
    family: str
    feature_spec_version: str = FEATURE_SPEC_VERSION
    feature_names: tuple[str, ...] = FEATURE_NAMES
    model_inputs: tuple[str, ...] = MODEL_INPUTS
    input_offsets: tuple[float, ...]
    reference_inputs: tuple[float, ...]  # portfolio mean of the transformed inputs (explanations)
    prior_rate: float
    score_quantile_rates: tuple[float, ...]
    explanation: str = EXPLANATION
    metrics: dict[str, float]
    candidates: dict[str, float]  # family → held-out Poisson deviance
    params: TrainingParams
    dataset: dict[str, float]
    sklearn_version: str
    # Each model input's training deciles (raw, before the log transform), for drift (docs/SCORING.md). None in
    # artifacts trained before it was kept: their inputs' drift is unknown, said so, not an error.
    input_reference: tuple[ReferenceBins, ...] | None = None

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"unknown model family {self.family!r}; expected one of {FAMILIES}")
        if len(self.input_offsets) != len(self.model_inputs) or len(self.reference_inputs) != len(self.model_inputs):
            raise ValueError("input_offsets and reference_inputs must have one value per model input")
        if len(self.score_quantile_rates) < 2 or not self.prior_rate > 0:
            raise ValueError("a spec needs a score mapping of ≥ 2 points and a prior rate > 0")
        if self.input_reference is not None and tuple(r.name for r in self.input_reference) != self.model_inputs:
            raise ValueError("input_reference must have one entry per model input, in model_inputs order")


def encode_spec(spec: ModelSpec) -> bytes:
    """Stable bytes (field order fixed, shortest float repr, 2-space indent): part of the content hash."""
    return msgspec.json.format(msgspec.json.encode(spec), indent=2) + b"\n"


def decode_spec(data: bytes) -> ModelSpec:
    return msgspec.json.decode(data, type=ModelSpec)
