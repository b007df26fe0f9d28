"""`GET /metrics`: Prometheus text of the whole cluster in one scrape (every node's Ray metrics agent,
merged; see deployments/metrics.py). Any replica answers it; each answer covers all replicas and actors."""

from __future__ import annotations

from typing import Annotated

import httpx
from fastapi import APIRouter, Depends
from fastapi.responses import PlainTextResponse

from deployments.api.resources import ApiResources, get_resources
from deployments.metrics import ClusterTargets, scrape_cluster

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"
NODE_TIMEOUT_S = 2.0
ResourcesDep = Annotated[ApiResources, Depends(get_resources)]
router = APIRouter(tags=["monitoring"])


@router.get("/metrics", summary="Prometheus metrics of every replica and actor", response_class=PlainTextResponse)
async def metrics(resources: ResourcesDep) -> PlainTextResponse:
    if resources.metrics_targets is None or resources.metrics_client is None:
        resources.metrics_targets = ClusterTargets()
        resources.metrics_client = httpx.AsyncClient()
    try:
        targets = await resources.metrics_targets.get()
    except Exception as error:  # Ray not reachable (in-process tests): say so rather than 500
        return PlainTextResponse(f"# cluster metrics unavailable: {error!r}\n", status_code=503,
                                 media_type=PROMETHEUS_TEXT)
    result = await scrape_cluster(resources.metrics_client, targets, NODE_TIMEOUT_S)
    return PlainTextResponse(result.text, media_type=PROMETHEUS_TEXT)
