"""Wiring the ingest pipeline on Ray: S shards, P persistence actors, C consumers, one risk scorer (DESIGN.md §1).

The only place that creates the pipeline's actors. Actors are named (`<prefix>shard-0`, …) in the
configured namespace so operators find them in the Ray dashboard and a second `start` reuses them.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import ray

from actors.consumer import IngestConsumer
from actors.driver_shard import DriverShard
from actors.persistence import Persistence
from actors.risk_scorer import RiskScorer
from config.settings import Settings
from storage.postgres.event_store import PostgresEventStore
from storage.postgres.pool import create_pool


@dataclass
class Pipeline:
    settings: Settings
    shards: list = field(default_factory=list)
    persisters: list = field(default_factory=list)
    consumers: list = field(default_factory=list)
    runs: list = field(default_factory=list)  # ObjectRefs of the consumers' run() calls
    scorer: Any = None  # RiskScorer: scores drivers on trip end (docs/SCORING.md)
    scorer_run: Any = None  # ObjectRef of its run() call

    def actors(self) -> list:
        return [*self.consumers, *self.shards, *self.persisters, *([self.scorer] if self.scorer else [])]


def start_pipeline(settings: Settings, prefix: str = "") -> Pipeline:
    """Create (or reuse) the actors and start every consumer's loop. Ray must be initialised."""
    opts = {"lifetime": None, "get_if_exists": True}
    pipeline = Pipeline(settings=settings)
    pipeline.scorer = RiskScorer.options(name=f"{prefix}risk-scorer", **opts).remote(settings)
    pipeline.shards = [
        DriverShard.options(name=f"{prefix}shard-{i}", **opts).remote(i, settings) for i in range(settings.num_shards)
    ]
    pipeline.persisters = [
        Persistence.options(name=f"{prefix}persistence-{i}", **opts).remote(i, settings, pipeline.scorer)
        for i in range(settings.num_persistence)
    ]
    count = settings.kafka_num_consumers
    pipeline.consumers = [
        IngestConsumer.options(name=f"{prefix}consumer-{i}", **opts).remote(
            i, count, settings, pipeline.shards, pipeline.persisters
        )
        for i in range(count)
    ]
    pipeline.runs = [consumer.run.remote() for consumer in pipeline.consumers]
    pipeline.scorer_run = pipeline.scorer.run.remote()
    return pipeline


async def pipeline_status(pipeline: Pipeline) -> dict:
    consumers = await asyncio.gather(*(c.status.remote() for c in pipeline.consumers))
    shards = await asyncio.gather(*(s.stats.remote() for s in pipeline.shards))
    persisters = await asyncio.gather(*(p.stats.remote() for p in pipeline.persisters))
    return {
        "consumers": consumers,
        "shards": shards,
        "persisters": persisters,
        "scorer": await scorer_status(pipeline),
        "durable": sum(c["durable"] for c in consumers),
        "dead_lettered": sum(c["dead_lettered"] for c in consumers),
        "lag": sum(c.get("lag_total", 0) for c in consumers),
        "rewinds": sum(c["rewinds"] for c in consumers),
    }


async def scorer_status(pipeline: Pipeline, timeout_s: float = 5.0) -> dict:
    """The scorer's counters (scored, pending, model_unavailable, …); {"available": False} while it restarts."""
    if pipeline.scorer is None:
        return {"available": False}
    try:
        return {"available": True, **await asyncio.wait_for(pipeline.scorer.stats.remote(), timeout_s)}
    except Exception as error:
        return {"available": False, "error": repr(error)[:200]}


async def durable_messages(settings: Settings) -> int:
    """Messages of the events topic covered by stored offsets (durable or dead-lettered), from PostgreSQL:
    survives any actor restart, unlike the actors' own counters."""
    pool = await create_pool(settings, application_name="autoins-pipeline-watch", min_size=1, max_size=1)
    try:
        offsets = await PostgresEventStore(pool).stored_offsets(
            settings.kafka_consumer_group, settings.kafka_topic_events
        )
    finally:
        await pool.close()
    return sum(offsets.values())


async def wait_until_drained(pipeline: Pipeline, expected_total: int, timeout_s: float, poll_s: float = 0.25) -> dict:
    """Wait until stored offsets cover `expected_total` messages of a topic that started empty and the
    consumers have seen their acks (their lag, from fetch watermarks, is 0)."""
    deadline = time.monotonic() + timeout_s
    durable = 0
    while time.monotonic() < deadline:
        durable = await durable_messages(pipeline.settings)
        if durable >= expected_total:
            status = await pipeline_status(pipeline)
            if status["lag"] == 0:
                return status
        await asyncio.sleep(poll_s)
    status = await pipeline_status(pipeline)
    raise TimeoutError(f"pipeline made {durable}/{expected_total} messages durable in {timeout_s:.0f} s: {status}")


async def stop_pipeline(pipeline: Pipeline, timeout_s: float = 60.0) -> None:
    """Stop consumers cleanly (they finish what is in flight and commit), then the other actors."""
    await asyncio.gather(*(c.stop.remote() for c in pipeline.consumers), return_exceptions=True)
    if pipeline.runs:
        await asyncio.wait_for(asyncio.gather(*pipeline.runs, return_exceptions=True), timeout_s)
    if pipeline.scorer is not None:  # after the consumers: their last batches may still hand it trips
        await asyncio.gather(pipeline.scorer.stop.remote(), return_exceptions=True)
        if pipeline.scorer_run is not None:  # stop() cancels a round stuck on an outage after a grace period
            await asyncio.wait([asyncio.ensure_future(pipeline.scorer_run)], timeout=timeout_s)
    others = [*pipeline.shards, *pipeline.persisters, *([pipeline.scorer] if pipeline.scorer else [])]
    await asyncio.gather(*(a.shutdown.remote() for a in others), return_exceptions=True)
    for actor in pipeline.actors():
        ray.kill(actor, no_restart=True)
