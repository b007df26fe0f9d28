"""`GET /metrics`: Prometheus text of the whole cluster in one scrape (every node's Ray metrics agent,
merged; see deployments/metrics.py). Any replica answers it; each answer covers all replicas and actors.

Operator only (deployments.api.operator: the operator token, or local development without one). The merged
text is reused for `metrics_cache_s` and computed once however many scrapes arrive meanwhile; the merge runs
off the event loop."""

from __future__ import annotations

from typing import Annotated

import httpx
from fastapi import APIRouter, Depends
from fastapi.responses import PlainTextResponse

from deployments.api.operator import require_operator
from deployments.api.resources import ApiResources, get_resources
from deployments.metrics import ClusterTargets, scrape_cluster

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"
NODE_TIMEOUT_S = 2.0
ResourcesDep = Annotated[ApiResources, Depends(get_resources)]
router = APIRouter(tags=["monitoring"])


@router.get("/metrics", summary="Prometheus metrics of every replica and actor (operator token)",
            response_class=PlainTextResponse, dependencies=[Depends(require_operator)],
            responses={401: {"description": "operator token missing or wrong"},
                       403: {"description": "no operator token is configured outside local development"}})
async def metrics(resources: ResourcesDep) -> PlainTextResponse:
    status, text = await resources.metrics_cache.get(lambda: _scrape(resources))
    return PlainTextResponse(text, status_code=status, media_type=PROMETHEUS_TEXT)


async def _scrape(resources: ApiResources) -> tuple[int, str]:
    if resources.metrics_targets is None or resources.metrics_client is None:
        resources.metrics_targets = ClusterTargets()
        resources.metrics_client = httpx.AsyncClient()
    try:
        targets = await resources.metrics_targets.get()
    except Exception as error:  # Ray not reachable (in-process tests): say so rather than 500
        return 503, f"# cluster metrics unavailable: {type(error).__name__}\n"
    result = await scrape_cluster(resources.metrics_client, targets, NODE_TIMEOUT_S)
    return 200, result.text
