"""Observability of the API: the request-id/access-log/HTTP-metrics middleware and the per-replica samplers.
(The `/health` and `/metrics` routes are routers like the others, installed by create_app.)

`install_observability(app)` is called once by `deployments.api.app.create_app`, after the app's lifespan is
set: it adds the middleware and wraps the lifespan so that, per replica, after the app's own startup (which
creates `app.state.resources`), it starts
- a pool sampler (every `POOL_SAMPLE_S`): `db_connection_pool_*` gauges of this replica and the
  `db_query_duration_seconds` observations buffered meanwhile (storage/metrics/db_metrics.py);
- the business collector (every `BUSINESS_INTERVAL_S`), only in the replica of rank 0 of its deployment, so
  the cluster runs exactly one (Serve gives a replacement replica the free rank 0): `active_drivers_total`,
  `active_trips_total`, `events_per_second`, `average_risk_score`;
and at shutdown stops them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from config.logging import configure_logging, get_logger
from config.settings import Settings
from deployments.api.middleware import PlatformMiddleware
from deployments.api.resources import ApiResources
from deployments.metrics import EventRate, platform_metrics
from deployments.replica import in_replica, replica_name, replica_rank
from storage.metrics.db_metrics import db_metrics
from storage.postgres.business_queries import business_counts
from storage.postgres.pool import acquire

POOL_SAMPLE_S = 5.0
CACHE_COUNTS_S = 1.0
HTTP_FLUSH_S = 0.5  # cache hit/miss counters go to Ray in one call per level and outcome per interval
BUSINESS_INTERVAL_S = 30.0
API_POOL = "autoins-api"  # the pool's application name (deployments/api/app.py), its `pool` tag
_log = get_logger("autoins.observability")


class HttpObservations:
    """`http_request_duration_seconds` observations buffered on the request path (a list append) and recorded
    in the background every HTTP_FLUSH_S: Ray's histogram record was the largest single cost of a cached GET
    (py-spy, 11 % of a replica's samples). Bounded: past MAX_PENDING, the oldest are recorded first."""

    MAX_PENDING = 50_000

    def __init__(self) -> None:
        self.pending: list[tuple[str, str, int, float]] = []

    def observe(self, method: str, endpoint: str, status: int, duration_s: float) -> None:
        self.pending.append((method, endpoint, status, duration_s))
        if len(self.pending) >= self.MAX_PENDING:
            self.flush()

    def flush(self) -> None:
        pending, self.pending = self.pending, []
        metrics = platform_metrics()
        for method, endpoint, status, duration_s in pending:
            metrics.observe_http(method, endpoint, status, duration_s)


def access_log_policy(settings: Settings) -> Callable[[int, float], bool]:
    """Which requests get an access line: every one with ACCESS_LOG_ALL, else errors and slow requests."""
    if settings.access_log_all:
        return lambda _status, _duration_s: True
    slow_s = settings.access_log_slow_ms / 1000
    return lambda status, duration_s: status >= 400 or duration_s >= slow_s


def install_observability(app: FastAPI) -> None:
    """Middleware (outermost) and the per-replica background tasks (pool sampler, business metrics)."""
    observations = app.state.http_observations = HttpObservations()
    app.add_middleware(PlatformMiddleware, observe=observations.observe, served_by=replica_name,
                       echo_request_id=lambda: not in_replica(), log_access=access_log_policy(app.state.settings))
    original = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app_: FastAPI) -> AsyncIterator[Any]:
        async with original(app_) as state:
            tasks = await start_samplers(app_)
            try:
                yield state
            finally:
                await stop_samplers(tasks)
                app_.state.http_observations.flush()

    app.router.lifespan_context = lifespan


async def start_samplers(app: FastAPI) -> list[asyncio.Task]:
    resources = app.state.resources
    settings = resources.settings
    configure_logging(settings.log_level, json=settings.log_json)
    platform_metrics()  # create the metric objects now, inside the replica (Serve tags are read at creation)
    observations: HttpObservations = app.state.http_observations

    async def flush_http() -> None:
        observations.flush()

    tasks = [asyncio.create_task(_every(POOL_SAMPLE_S, lambda: _sample_pool(resources)), name="pool-sampler"),
             asyncio.create_task(_every(HTTP_FLUSH_S, flush_http), name="http-observations")]
    if in_replica():  # `cache_hits_total`/`cache_misses_total` by cache_type are recorded only inside Ray
        sent: dict[str, int] = {}
        tasks.append(asyncio.create_task(_every(CACHE_COUNTS_S, lambda: _send_cache_counts(resources, sent)),
                                         name="cache-counters"))
    if replica_rank() == 0 and settings.enable_metrics:
        rate = EventRate()
        tasks.append(asyncio.create_task(_every(BUSINESS_INTERVAL_S, lambda: _collect_business(resources, rate)),
                                         name="business-metrics"))
    _log.info("observability_started", replica=replica_name(), rank=replica_rank(), tasks=[t.get_name() for t in tasks])
    return tasks


async def stop_samplers(tasks: list[asyncio.Task]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _every(interval_s: float, step: Callable[[], Awaitable[None]]) -> None:
    """Run `step` now and then every `interval_s` until cancelled; a failing step is logged, not fatal."""
    while True:
        try:
            await step()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            _log.warning("observability_task_failed", error=repr(error)[:300])
        await asyncio.sleep(interval_s)


async def _sample_pool(resources: ApiResources) -> None:
    db_metrics().sample(API_POOL, resources.pool, resources.settings.db_pool_size)


async def _send_cache_counts(resources: ApiResources, sent: dict[str, int]) -> None:
    """The cache's own counters since the last call, as increments of the Prometheus counters (batched: a
    Ray metric call per lookup was a measurable share of a cached GET), and the Redis latencies meanwhile."""
    stats = resources.cache.stats()
    metrics = platform_metrics()
    for level in ("l1", "l2"):
        for hit in (True, False):
            key = f"{level}_{'hits' if hit else 'misses'}"
            delta = stats[key] - sent.get(key, 0)
            if delta > 0:
                metrics.record_cache(level, hit, delta)
            sent[key] = stats[key]
    for operation, seconds in resources.cache.drain_latencies():
        metrics.observe_cache_latency(operation, seconds)


async def _collect_business(resources: ApiResources, rate: EventRate) -> None:
    settings = resources.settings
    async with acquire(resources.pool, settings) as conn:
        counts = await business_counts(conn, settings.kafka_topic_events)
    metrics = platform_metrics()
    metrics.active_drivers.set(counts.active_drivers)
    metrics.active_trips.set(counts.active_trips)
    metrics.average_risk_score.set(counts.average_risk_score)
    metrics.events_per_second.set(rate.update(counts.events_total, time.time()))
