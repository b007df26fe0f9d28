"""Per-replica resources of the API: created in the app's lifespan, closed at shutdown.

One object so routers take one dependency (`get_services`) and tests can build the app against any
database/Redis/Kafka by passing Settings. Resources are created lazily where a failure must not stop
the replica from starting (Kafka, the risk model handle): `/health/ready` reports them instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from fastapi import Request

from config.settings import Settings


@dataclass
class Services:
    settings: Settings
    pool: asyncpg.Pool | None = None
    redis: aioredis.Redis | None = None
    cache: Any = None  # storage.redis.cache.MultiLevelCache (L1 → Redis → PostgreSQL)
    producer: Any = None  # storage.kafka.producer.ReadingProducer, created on first ingest
    extras: dict[str, Any] = field(default_factory=dict)  # background tasks, handles, metrics


async def get_services(request: Request) -> Services:
    """FastAPI dependency: the replica's resources (set by the lifespan in deployments.api.app). `async def`
    so FastAPI calls it on the event loop instead of a worker thread."""
    return request.app.state.services
