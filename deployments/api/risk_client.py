"""How the API asks the RiskModel deployment for an assessment (the prior of a driver with no score yet).

`RiskClient` is the port (`async assess(ScoreRequest) -> RiskAssessment`); `ServeRiskClient` reaches the
model through a named Serve handle obtained lazily (the API starts even when the model is not deployed);
any failure becomes `RiskModelUnavailable`, which the app answers with 503 and a message.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from config.names import RISK_APP, RISK_DEPLOYMENT
from domain.features import FEATURE_NAMES
from domain.risk_assessment import RiskAssessment, ScoreRequest

NO_TRIPS: tuple[float, ...] = (0.0,) * len(FEATURE_NAMES)


class RiskModelUnavailable(Exception):
    """The model cannot answer now (not deployed, not ready, timed out); the message says which."""


class RiskClient(Protocol):
    async def assess(self, request: ScoreRequest) -> RiskAssessment: ...


def prior_request(driver_id: str) -> ScoreRequest:
    """An all-zero feature vector: no trips yet, so the model answers the portfolio prior, credibility 0."""
    return ScoreRequest(driver_id=driver_id, features=NO_TRIPS)


class ServeRiskClient:
    """`serve.get_deployment_handle(RISK_DEPLOYMENT, app_name=RISK_APP)`, looked up on first use."""

    def __init__(self, timeout_s: float = 5.0) -> None:
        self._timeout_s = timeout_s
        self._handle: Any = None

    def _get_handle(self) -> Any:
        if self._handle is None:
            from ray import serve

            self._handle = serve.get_deployment_handle(RISK_DEPLOYMENT, app_name=RISK_APP)
        return self._handle

    async def assess(self, request: ScoreRequest) -> RiskAssessment:
        try:
            handle = self._get_handle()
            return await asyncio.wait_for(handle.assess.remote(request), self._timeout_s)
        except TimeoutError:
            raise RiskModelUnavailable(f"the risk model did not answer within {self._timeout_s:g} s") from None
        except Exception as error:  # Serve/Ray raise many types here; all mean "cannot score now"
            self._handle = None  # look the handle up again next time (the app may have been redeployed)
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise RiskModelUnavailable(f"the risk model is unavailable: {reason[:200]}") from None
