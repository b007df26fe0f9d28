"""The FastAPI app behind the `ApiGateway` Serve deployment: routers, lifespan, middleware.

`create_app(settings)` is plain FastAPI, so tests can also drive it in-process (httpx ASGITransport)
against real PostgreSQL/Redis/Kafka; `deployments.builder` wraps it in `@serve.ingress`.
"""

from __future__ import annotations

from fastapi import FastAPI

from autoins.settings import Settings


def create_app(settings: Settings) -> FastAPI:
    raise NotImplementedError  # filled in by the API work (issue 5)
