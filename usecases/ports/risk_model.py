"""RiskModel: the claim-frequency model as the use cases see it (the Serve deployment in production).

`assess_many` keeps order and length; any failure to answer (not deployed, not ready, timed out, a replica
gone) is `RiskModelUnavailable`, which means "later": the scorer backs off, the API answers 503.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from domain.features import FEATURE_NAMES
from domain.risk_assessment import RiskAssessment, ScoreRequest

NO_TRIPS: tuple[float, ...] = (0.0,) * len(FEATURE_NAMES)


class RiskModelUnavailable(Exception):
    """The model cannot answer now; the message says why in one line."""


class RiskModel(Protocol):
    async def assess(self, request: ScoreRequest) -> RiskAssessment: ...

    async def assess_many(self, requests: Sequence[ScoreRequest]) -> list[RiskAssessment]: ...


def prior_request(driver_id: str) -> ScoreRequest:
    """An all-zero feature vector: no trips yet, so the model answers the portfolio prior, credibility 0."""
    return ScoreRequest(driver_id=driver_id, features=NO_TRIPS)
