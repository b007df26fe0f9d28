"""The PostgreSQL families (plan §5.1) of any process with a pool: API and WebSocket replicas, pipeline actors.

Recorded with `ray.serve.metrics`, which is `ray.util.metrics` plus the deployment/replica tags when the process
is a Serve replica (nothing is added in a plain actor), so one definition serves both. `pool` is the pool's
application name (`autoins-api`, `autoins-persistence-0`, …): bounded by the actors and deployments, never per
driver. Statement timings come from storage/postgres/query_timing.py (buffered on the query path) and are
recorded here every `DB_SAMPLE_S` with the pool gauges: Ray's record call stays off the query path.
"""

from __future__ import annotations

import asyncio
import functools

import asyncpg
import structlog
from ray.serve.metrics import Gauge, Histogram

from storage.postgres.pool import pool_use
from storage.postgres.query_timing import query_timings

DB_SAMPLE_S = 5.0
_log = structlog.get_logger("storage.metrics.db")
QUERY_BOUNDARIES_S = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]


class DbMetrics:
    def __init__(self) -> None:
        self.query_duration = Histogram(
            "db_query_duration_seconds", description="PostgreSQL statement time, by leading verb and first table",
            boundaries=QUERY_BOUNDARIES_S, tag_keys=("query_type", "table"),
        )
        pool = ("pool",)
        self.size = Gauge("db_connection_pool_size", description="Open PostgreSQL connections of the pool",
                          tag_keys=pool)
        self.idle = Gauge("db_connection_pool_idle", description="Idle connections of the pool", tag_keys=pool)
        self.overflow = Gauge("db_connection_pool_overflow", tag_keys=pool,
                              description="Connections open beyond db_pool_size (asyncpg grows to its max size)")
        self.available = Gauge("db_connection_pool_available", tag_keys=pool,
                               description="Idle connections plus room to grow: 0 means the next acquire waits")

    def sample(self, name: str, pool: asyncpg.Pool, configured_size: int) -> None:
        """Set the pool gauges of `name` and record the statement timings buffered since the last sample."""
        use = pool_use(pool)
        tags = {"pool": name}
        self.size.set(use.size, tags=tags)
        self.idle.set(use.idle, tags=tags)
        self.overflow.set(max(0, use.size - configured_size), tags=tags)
        self.available.set(use.available, tags=tags)
        self.flush_queries()

    def flush_queries(self) -> None:
        for query_type, table, seconds in query_timings().drain():
            self.query_duration.observe(seconds, tags={"query_type": query_type, "table": table})


@functools.cache
def db_metrics() -> DbMetrics:
    """The process's objects, made on first use (in a replica after Serve set its context: its tags)."""
    return DbMetrics()


async def sample_pool_forever(name: str, pool: asyncpg.Pool, configured_size: int,
                              interval_s: float = DB_SAMPLE_S) -> None:
    """Run as a task next to a pool until cancelled; a failing sample never ends it."""
    while True:
        try:
            db_metrics().sample(name, pool, configured_size)
        except Exception as error:  # metrics never stop the process; say why they are missing
            _log.warning("db_metrics_sample_failed", pool=name, error=repr(error)[:200])
        await asyncio.sleep(interval_s)
