"""FakeRiskModel: the RiskModel port without Ray. A fixed rule of the features (so equal inputs give equal
assessments, like the real model), the prior for an all-zero vector; `available=False` → unavailable."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from domain.pricing import band_for
from domain.risk_assessment import RiskAssessment, ScoreRequest
from usecases.ports.risk_model import RiskModelUnavailable

PRIOR_RATE = 0.05


class FakeRiskModel:
    def __init__(self, model_version: str = "fake-1", available: bool = True) -> None:
        self.model_version = model_version
        self.available = available
        self.calls: list[int] = []  # batch sizes seen

    async def assess(self, request: ScoreRequest) -> RiskAssessment:
        return (await self.assess_many([request]))[0]

    async def assess_many(self, requests: Sequence[ScoreRequest]) -> list[RiskAssessment]:
        if not self.available:
            raise RiskModelUnavailable("the risk model is unavailable: fake switched off")
        self.calls.append(len(requests))
        return [self._one(r) for r in requests]

    def _one(self, request: ScoreRequest) -> RiskAssessment:
        trips = request.features[0] if request.features else 0.0
        weight = trips / (trips + 40.0)
        model_rate = PRIOR_RATE * (1.0 + sum(request.features[1:]) % 1.0)
        rate = weight * model_rate + (1 - weight) * PRIOR_RATE
        score = round(min(100.0, max(0.0, rate * 1000.0)), 4)
        digest = hashlib.sha256(repr(request.features).encode()).hexdigest()[:16]
        band = band_for(score).name
        return RiskAssessment(
            driver_id=request.driver_id, model_version=self.model_version, feature_hash=digest, score=score,
            band=band, rate=rate, model_rate=model_rate, prior_rate=PRIOR_RATE, credibility=weight,
        )
