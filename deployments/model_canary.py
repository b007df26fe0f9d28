"""Weighted routing of a model rollout, inside the stable `RiskModel` replicas (autoins/rollout.py).

During `autoins rollout model --to VERSION` the split (`rollout:model` in Redis, storage/redis/traffic_split.py)
names the canary app and the share of drivers it scores: a stable hash of the driver id, so a driver's scores come
from one model version for a whole step (each score records its model_version). A call the canary fails is
scored here instead: its callers (the scorer, the API) see the stable model, while the canary's own
`ml_assessments_total{outcome="error"}` shows the failure that rolls it back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from config.logging import get_logger
from config.names import RISK_DEPLOYMENT
from config.settings import Settings
from domain.risk_assessment import RiskAssessment, ScoreRequest
from domain.rollout import goes_to_canary
from storage.redis.traffic_split import CachedTrafficSplit

CANARY_TIMEOUT_S = 5.0
_log = get_logger("deployments.risk_model")


class ModelCanary:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._routes = settings.rollout_role == "stable"  # the canary itself never forwards
        self._redis: Any = None
        self._split = CachedTrafficSplit("model", settings.rollout_split_check_s, self._client)
        self._handles: dict[str, Any] = {}

    def _client(self) -> Any:
        if self._redis is None:
            from storage.redis.client import create_redis

            self._redis = create_redis(self._settings)
        return self._redis

    async def canary_for(self, driver_ids: Sequence[str]) -> tuple[str | None, list[bool]]:
        """The canary app and, per driver, whether it goes there; (None, []) outside a rollout."""
        if not self._routes:
            return None, []
        split = await self._split.current()
        if split is None or split.percent <= 0:
            return None, []
        return split.canary_app, [goes_to_canary(driver_id, split.percent) for driver_id in driver_ids]

    async def assess(self, app: str, request: ScoreRequest) -> RiskAssessment | None:
        return await self._call(app, "assess", request)

    async def assess_many(self, app: str, requests: list[ScoreRequest]) -> list[RiskAssessment] | None:
        return await self._call(app, "assess_many", requests)

    async def _call(self, app: str, method: str, argument: Any) -> Any:
        """The canary's answer, or None (it failed or is gone: the stable model answers)."""
        try:
            handle = self._handles.get(app)
            if handle is None:
                from ray import serve

                handle = self._handles[app] = serve.get_deployment_handle(RISK_DEPLOYMENT, app_name=app)
            return await asyncio.wait_for(getattr(handle, method).remote(argument), CANARY_TIMEOUT_S)
        except Exception as error:
            self._handles.pop(app, None)
            _log.warning("model_canary_failed", app=app, error=f"{type(error).__name__}: {str(error)[:200]}")
            return None
