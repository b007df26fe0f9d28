"""What a risk score is, shared by the model (deployments.risk_model), the scorer on trip end and the API.

Pure data plus the credibility rule. A `ScoreRequest` carries a driver's features in
`domain.features.FEATURE_NAMES` order; the model answers a `RiskAssessment`. The same features and
model version always give the same assessment (issue 6: scores are reproducible).
"""

from __future__ import annotations

import msgspec


class ScoreRequest(msgspec.Struct, frozen=True, kw_only=True):
    """One driver to score. `features` in FEATURE_NAMES order (trip_count and exposure_km included);
    an all-zero vector (no trips yet) gets the portfolio prior with credibility 0."""

    driver_id: str
    features: tuple[float, ...]
    # A trip in the window was folded from stripped readings (TripSummary.quality_flags has MILEAGE_ONLY_FLAG): the
    # position-derived inputs are set to the portfolio's and credibility is scaled (docs/SCORING.md, "mileage_only").
    mileage_only: bool = False


# The model inputs a mileage_only driver's readings cannot support: speeding needs the speed limit of where the car
# was (stripped with the position), and cornering is derived from headings/bearings unless the device measured it.
POSITION_DERIVED_INPUTS: tuple[str, ...] = ("harsh_cornering_per_100km", "speeding_moderate_share",
                                            "speeding_severe_share")
# Credibility of a mileage_only driver's own data relative to a full driver with the same trips: three of eleven
# inputs are the portfolio's, not theirs, so their experience says less and the prior weighs more.
MILEAGE_ONLY_CREDIBILITY = 0.5


class FactorContribution(msgspec.Struct, frozen=True):
    """How much one feature moves this driver's expected claim rate vs the portfolio average, in log-rate
    units (+0.1 ≈ 10 % more claims). Positive = riskier."""

    name: str
    contribution: float


class RiskAssessment(msgspec.Struct, frozen=True, kw_only=True):
    """A scored driver. Rates are expected claims per year; `score` in [0, 100], lower is safer;
    `rate` = credibility × model_rate + (1 − credibility) × prior_rate is what `score` maps from."""

    driver_id: str
    model_version: str
    feature_hash: str
    score: float
    band: str
    rate: float
    model_rate: float
    prior_rate: float
    credibility: float
    top_factors: tuple[FactorContribution, ...] = ()
    mileage_only: bool = False  # scored with mileage-only inputs (see ScoreRequest.mileage_only)


def credibility(trip_count: float, k_trips: float) -> float:
    """Bühlmann-style weight of a driver's own data: Z = n / (n + k), n = trips in the window, in [0, 1)."""
    if k_trips <= 0:
        raise ValueError(f"k_trips must be > 0, got {k_trips}")
    n = max(float(trip_count), 0.0)
    return n / (n + k_trips)
