"""ServeRiskModel: the RiskModel port over the `RiskModel` Serve deployment, by name.

The one place that looks the deployment up (the scorer, the API and the benches all come here). The handle
is found lazily, so a process starts while the model is not deployed; after any failure it is looked up again
(the app may have been redeployed or moved to another node). A call whose replica died under it is sent once
more (to another replica: the deployment runs two). Every failure becomes RiskModelUnavailable.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from typing import Any

from config.names import RISK_APP, RISK_DEPLOYMENT
from domain.risk_assessment import RiskAssessment, ScoreRequest
from usecases.ports.risk_model import RiskModelUnavailable

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# ray.serve._private.constants (Ray 2.60); spelled out because importing them would import ray.serve
SERVE_CONTROLLER_NAME, SERVE_NAMESPACE = "SERVE_CONTROLLER_ACTOR", "serve"


class ServeRiskModel:
    def __init__(self, timeout_s: float = 5.0, batch_timeout_s: float = 15.0, app_name: str = RISK_APP) -> None:
        self._app_name = app_name
        self._timeout_s = timeout_s
        self._batch_timeout_s = batch_timeout_s
        self._handle: Any = None

    async def assess(self, request: ScoreRequest) -> RiskAssessment:
        return await self._call("assess", request, self._timeout_s)

    async def assess_many(self, requests: Sequence[ScoreRequest]) -> list[RiskAssessment]:
        if not requests:
            return []
        answers = list(await self._call("assess_many", list(requests), self._batch_timeout_s))
        if [a.driver_id for a in answers] != [r.driver_id for r in requests]:
            raise RiskModelUnavailable(f"{RISK_DEPLOYMENT} answered {len(answers)} assessments for {len(requests)}")
        return answers

    async def _call(self, method: str, argument: Any, timeout_s: float) -> Any:
        try:
            try:
                return await self._once(method, argument, timeout_s)
            except Exception as error:
                if not _replica_died(error):
                    raise
                # the replica that took the call died under it (assessing is pure, so a second call is safe);
                # Serve's router has dropped it, so the retry reaches a live replica when there is one
                return await self._once(method, argument, timeout_s)
        except TimeoutError:
            self._handle = None
            raise RiskModelUnavailable(f"the risk model did not answer within {timeout_s:g} s") from None
        except Exception as error:  # Serve and Ray raise many types here; all mean "cannot score now"
            self._handle = None
            # the type first: Ray wraps the replica's error (RayTaskError(ModelNotReady)) and its text starts with
            # a colored traceback header that says nothing about why
            lines = _ANSI.sub("", str(error)).splitlines()
            reason = f"{type(error).__name__}: {lines[0] if lines else ''}"
            raise RiskModelUnavailable(f"the risk model is unavailable: {reason[:200]}") from None


    async def _once(self, method: str, argument: Any, timeout_s: float) -> Any:
        if self._handle is None:
            self._handle = await asyncio.to_thread(_deployment_handle, self._app_name)
        return await asyncio.wait_for(getattr(self._handle, method).remote(argument), timeout_s)


def _replica_died(error: BaseException) -> bool:
    """The call's replica process is gone (SIGKILL, its node lost): not the model's answer, nor a timeout."""
    from ray.exceptions import RayActorError  # ActorDiedError and ActorUnavailableError derive from it

    return isinstance(error, RayActorError)


def _deployment_handle(app_name: str) -> Any:
    """Blocking (controller round trips): run in a thread. Probes for Serve's controller first, so a cluster
    without Serve (ingest-only runs, the pipeline tests) never pays for importing ray.serve."""
    import ray

    try:
        ray.get_actor(SERVE_CONTROLLER_NAME, namespace=SERVE_NAMESPACE)
    except ValueError:
        raise RiskModelUnavailable(f"Serve is not running: no {RISK_DEPLOYMENT} in app {app_name!r}") from None
    from ray import serve

    return serve.get_deployment_handle(RISK_DEPLOYMENT, app_name=app_name)
