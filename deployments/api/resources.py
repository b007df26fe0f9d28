"""Per-replica resources of the API (`ApiResources`): created in the app's lifespan, closed at shutdown.

One typed object so routers take one dependency (`get_resources`) and tests can build the app against any
database/Redis/Kafka by passing Settings. The use-case handlers (`queries`, `admin`) are built once here over
the adapters of their ports. Resources whose failure must not stop the replica from starting (Kafka, the risk
model's handle, the metrics scrape client) are created on first use: `/health/ready` reports them instead.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import redis.asyncio as aioredis
from fastapi import Request

from config.settings import Settings
from deployments.api.recent import Recent
from storage.kafka.ingest import IngestProducer
from storage.kafka.probe import KafkaProbe
from storage.redis.cache import MultiLevelCache
from usecases.admin import AdminWrites
from usecases.claims import Claims
from usecases.devices import Devices
from usecases.disputes import Disputes
from usecases.driver_queries import DriverQueries
from usecases.login import LoginPorts
from usecases.ports.risk_model import RiskModel
from usecases.privacy import PrivacyConsent
from usecases.sessions import Sessions


@dataclass
class ApiResources:
    settings: Settings
    pool: asyncpg.Pool
    redis: aioredis.Redis
    cache: MultiLevelCache  # L1 → Redis → PostgreSQL; the ResponseCache port of the handlers
    risk_model: RiskModel
    queries: DriverQueries
    disputes: Disputes
    admin: AdminWrites
    login: LoginPorts  # pair throttle (Redis), credentials (PostgreSQL), the capped password verifier, the clock
    devices: Devices  # device keys: admin writes, and the ingest route's cached key check
    sessions: Sessions  # token versions: revocation (docs/SECURITY.md §8)
    privacy: PrivacyConsent  # consent modes, private trips, erasure (docs/PRIVACY.md)
    claims: Claims  # first notice of loss: claims opened by crashes, the driver's answer
    cache_listener: asyncio.Task | None = None
    cache_warming: asyncio.Task | None = None
    ingest: IngestProducer | None = None  # created on the first ingest request
    kafka_probe: KafkaProbe | None = None  # created on the first readiness check
    risk_app_handle: Any = None  # ray.serve handle of the risk app, for readiness (model_info)
    metrics_targets: Any = None  # deployments.metrics.ClusterTargets, created on the first /metrics
    metrics_client: httpx.AsyncClient | None = None
    # (status, text) of the last cluster scrape and the last readiness checks, reused briefly (docs/SECURITY.md §4)
    metrics_cache: Recent[tuple[int, str]] = field(default_factory=lambda: Recent(5.0))
    readiness_cache: Recent[dict[str, str]] = field(default_factory=lambda: Recent(1.0))

    def ingest_producer(self) -> IngestProducer:
        if self.ingest is None:
            self.ingest = IngestProducer(self.settings)
        return self.ingest


async def get_resources(request: Request) -> ApiResources:
    """FastAPI dependency: the replica's resources (set by the lifespan in deployments.api.app). `async def`
    so FastAPI calls it on the event loop instead of a worker thread."""
    return request.app.state.resources
