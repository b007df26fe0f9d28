"""`/health/live` (the process answers; no I/O) and `/health/ready` (every dependency answers in time).

Ready checks run concurrently, each bounded by `CHECK_TIMEOUT_S`: PostgreSQL `SELECT 1`, Redis PING,
Kafka metadata (and the events topic exists), the risk model's `model_info()` through its Serve handle.
200 when all are ok; otherwise 503; never a 500. The public sees only `{"status": "ready" | "not ready"}`; the
operator token or an admin's JWT (deployments.api.operator.sees_details) also get each check, its reason
(`"model": "not ready: <reason>"`, which may name hosts and paths) and the replica. Results are reused for
`readiness_cache_s` (1 s), one round of checks at a time, so probes and floods cost the services nothing more.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from config.names import RISK_APP
from deployments.api.operator import sees_details
from deployments.api.resources import ApiResources, get_resources
from deployments.replica import replica_name
from storage.kafka.probe import KafkaProbe
from storage.postgres.business_queries import ping
from storage.postgres.pool import acquire

CHECK_TIMEOUT_S = 2.0
OK = "ok"
ResourcesDep = Annotated[ApiResources, Depends(get_resources)]
router = APIRouter(tags=["health"])


@router.get("/health/live", summary="The process is up (no I/O)")
async def live(request: Request) -> dict[str, str]:
    """Names the build this replica runs, so a rollout (and an operator) can see which side answered."""
    return {"status": "alive", "replica": replica_name(), "build": request.app.state.settings.build_version}


@router.get(
    "/health/ready",
    summary="PostgreSQL, Redis, Kafka and the risk model answer (details with the operator token or as admin)",
    responses={503: {"description": "At least one dependency is not ready; operators see which in `checks`"}},
    openapi_extra={"x-access": "status only; checks, reasons and replica with the operator token or as admin"},
)
async def ready(request: Request, resources: ResourcesDep) -> JSONResponse:
    statuses = await resources.readiness_cache.get(lambda: _check_all(resources))
    failed = sorted(name for name, status in statuses.items() if not status.startswith(OK))
    body: dict[str, Any] = {"status": "not ready" if failed else "ready"}
    if sees_details(request):
        body.update(checks=statuses, replica=replica_name())
        if failed:
            body["failed"] = failed
    return JSONResponse(body, status_code=503 if failed else 200)


async def _check_all(resources: ApiResources) -> dict[str, str]:
    checks: dict[str, Callable[[], Awaitable[str]]] = {
        "postgres": lambda: _postgres(resources),
        "redis": lambda: _redis(resources),
        "kafka": lambda: _kafka(resources),
        "model": lambda: _model(resources),
    }
    results = await asyncio.gather(*(_bounded(name, check) for name, check in checks.items()))
    return dict(zip(checks, results, strict=True))


async def _bounded(name: str, check: Callable[[], Awaitable[str]]) -> str:
    try:
        return await asyncio.wait_for(check(), CHECK_TIMEOUT_S)
    except TimeoutError:
        return f"not ready: no answer in {CHECK_TIMEOUT_S:g} s"
    except Exception as error:  # readiness reports any failure; it never raises (a 500 would hide which)
        return f"not ready: {type(error).__name__}: {str(error)[:200]}"


async def _postgres(resources: ApiResources) -> str:
    if resources.pool is None:
        return "not ready: no connection pool"
    async with acquire(resources.pool, resources.settings) as conn:
        await ping(conn)
    return OK


async def _redis(resources: ApiResources) -> str:
    if resources.redis is None:
        return "not ready: no Redis client"
    await resources.redis.ping()
    return OK


async def _kafka(resources: ApiResources) -> str:
    if resources.kafka_probe is None:
        resources.kafka_probe = KafkaProbe(resources.settings)
    probe = resources.kafka_probe
    await asyncio.to_thread(probe.check, CHECK_TIMEOUT_S * 0.75)
    return OK


async def _model(resources: ApiResources) -> str:
    handle = resources.risk_app_handle
    if handle is None:
        try:
            handle = await asyncio.to_thread(_risk_handle)
        except Exception as error:  # RayServeException: the app is not deployed (or Serve is not running)
            return f"not ready: the {RISK_APP!r} app is not deployed ({str(error)[:120]})"
        resources.risk_app_handle = handle
    try:
        info = await handle.model_info.remote()
    except Exception:
        resources.risk_app_handle = None  # look it up again next time (redeployed or deleted)
        raise
    info = info if isinstance(info, dict) else vars(info)
    if not info.get("ready"):
        return f"not ready: {info.get('error') or 'model not loaded'}"
    return f"{OK} (model {info.get('model_version')})"


def _risk_handle() -> Any:
    from ray import serve

    return serve.get_app_handle(RISK_APP)
