"""What every pipeline actor shares: settings, logging, a lazily built pool, Redis, retries.

Constructors stay cheap and rerunnable (STYLE habit 8): Ray reruns `__init__` after a crash, so no
I/O happens here; pools are built on first use.
"""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg

from config.logging import configure_logging, get_logger
from config.rules import validation_rules
from domain.rules import TripRules
from storage.metrics.db_metrics import sample_pool_forever
from storage.postgres.pool import create_pool
from storage.redis.client import create_redis
from storage.retry import retry_transient

T = TypeVar("T")


class ActorContext:
    def __init__(self, settings, name: str) -> None:
        self.settings = settings
        self.name = name
        self.pid = os.getpid()
        self.node_id = _node_id()  # where Ray placed this process: operators and the multi-node tests read it
        # A batch allocates ~30k tracked objects (readings, UUIDs, items); with the default threshold (700)
        # the cyclic GC ran dozens of times per batch over every driver's state: measured 4.0 s → 1.0 s of
        # decode per 1M readings in a shard, +25 % pipeline throughput (BENCHMARKS.md). Nothing here builds
        # reference cycles at that rate, so collecting less often costs little memory.
        gc.set_threshold(50_000, 20, 20)
        configure_logging(settings.log_level, json=settings.log_json)
        self.log = get_logger(name).bind(actor=name, pid=self.pid)
        self.trip_rules = TripRules()
        self.validation_rules = validation_rules(settings)
        self._pool: asyncpg.Pool | None = None
        self._redis = None
        self._expiring: asyncio.Task | None = None
        self._pool_sampler: asyncio.Task | None = None

    async def pool(self, max_size: int = 4) -> asyncpg.Pool:
        if self._pool is None:
            self._pool = await self.retry(
                lambda: create_pool(
                    self.settings, application_name=f"autoins-{self.name}", min_size=1, max_size=max_size
                ),
                what="connect to PostgreSQL",
            )
            # db_connection_pool_* {pool="autoins-<actor>"} and db_query_duration_seconds of this actor
            self._pool_sampler = asyncio.get_running_loop().create_task(
                sample_pool_forever(f"autoins-{self.name}", self._pool, max_size))
        return self._pool

    def redis(self):
        if self._redis is None:
            self._redis = create_redis(self.settings)
        return self._redis

    async def retry(self, operation: Callable[[], Awaitable[T]], *, what: str) -> T:
        return await retry_transient(
            operation, what=what, on_retry=self._log_retry, max_backoff_s=self.settings.pipeline_retry_max_s
        )

    def _log_retry(self, what: str, error: BaseException, attempt: int, delay_s: float) -> None:
        self.log.warning(
            "waiting_for_service", what=what, error=repr(error)[:200], attempt=attempt, delay_s=round(delay_s, 3)
        )
        if self._pool is not None and isinstance(error, (asyncpg.InterfaceError, asyncpg.InternalClientError)):
            # never hand a connection that broke under the last attempt to the next one
            self._expiring = asyncio.get_running_loop().create_task(self._pool.expire_connections())

    async def close(self) -> None:
        if self._pool_sampler is not None:
            self._pool_sampler.cancel()
            self._pool_sampler = None
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None


def _node_id() -> str | None:
    import ray

    return ray.get_runtime_context().get_node_id() if ray.is_initialized() else None
