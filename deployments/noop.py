"""A no-op Serve endpoint, deployed only by `autoins bench api`: the floor an API request cannot beat
(same ingress, same replica settings, no work), measured in the same run as the API."""

from __future__ import annotations

from fastapi import FastAPI
from ray import serve

noop_api = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


@noop_api.get("/")
async def noop() -> dict:
    return {"ok": True}


@serve.deployment(ray_actor_options={"num_cpus": 0}, logging_config={"enable_access_log": False})
@serve.ingress(noop_api)
class Noop:
    pass


def build_noop_app(num_replicas: int, max_ongoing_requests: int):
    """Same replica count and slot cap as the API, so the comparison is like for like."""
    return Noop.options(num_replicas=num_replicas, max_ongoing_requests=max_ongoing_requests).bind()
