"""Launching and watching the ingest pipeline on Ray: S shards, P persistence actors, C consumers, one risk scorer
(DESIGN.md §1), all owned by a detached PipelineSupervisor (actors/supervisor.py).

Actors are named (`<prefix>shard-0`, …) in the configured namespace so operators find them in the Ray dashboard,
a second `start` joins the running pipeline, and no process but the supervisor needs to live for it to run.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import ray

from actors.supervisor import PipelineSupervisor, supervisor_name
from config.settings import Settings
from storage.postgres.event_store import PostgresEventStore
from storage.postgres.pool import create_pool
from usecases.supervision import Role, names_of, pipeline_specs


@dataclass
class Pipeline:
    """Handles of a running pipeline. The supervisor owns the actors (detached, named); these handles are looked
    up by name when the pipeline starts, and `refresh()` looks them up again (after a re-creation)."""

    settings: Settings
    prefix: str = ""
    supervisor: Any = None  # actors.supervisor.PipelineSupervisor
    shards: list = field(default_factory=list)
    persisters: list = field(default_factory=list)
    consumers: list = field(default_factory=list)
    scorer: Any = None  # RiskScorer: scores every trip end (docs/SCORING.md)
    maintenance: Any = None  # MaintenanceActor (actors/maintenance.py), when MAINTENANCE_ENABLED

    def actors(self) -> list:
        return [*self.consumers, *self.shards, *self.persisters, *([self.scorer] if self.scorer else [])]

    def refresh(self) -> Pipeline:
        specs = pipeline_specs(self.prefix, self.settings.kafka_num_consumers, self.settings.num_shards,
                               self.settings.num_persistence, maintenance=self.settings.maintenance_enabled)
        self.shards = [_actor(n) for n in names_of(specs, Role.SHARD)]
        self.persisters = [_actor(n) for n in names_of(specs, Role.PERSISTENCE)]
        self.consumers = [_actor(n) for n in names_of(specs, Role.CONSUMER)]
        self.scorer = _actor(names_of(specs, Role.SCORER)[0])
        self.maintenance = next((_actor(n) for n in names_of(specs, Role.MAINTENANCE)), None)
        return self


def start_pipeline(settings: Settings, prefix: str = "", ready_timeout_s: float = 120.0) -> Pipeline:
    """Create (or join) the pipeline's supervisor, which creates the actors and starts their loops; returns once
    every actor exists. Ray must be initialised. A second start with the same prefix joins the running one."""
    supervisor = PipelineSupervisor.options(
        name=supervisor_name(prefix), lifetime="detached", get_if_exists=True
    ).remote(settings, prefix)
    ray.get(supervisor.wait_ready.remote(ready_timeout_s), timeout=ready_timeout_s + 30)
    return Pipeline(settings=settings, prefix=prefix, supervisor=supervisor).refresh()


def join_pipeline(settings: Settings, prefix: str = "") -> Pipeline | None:
    """The running pipeline of this namespace and prefix, or None (for `autoins status` / `stop`)."""
    try:
        supervisor = ray.get_actor(supervisor_name(prefix))
    except ValueError:
        return None
    return Pipeline(settings=settings, prefix=prefix, supervisor=supervisor).refresh()


async def pipeline_status(pipeline: Pipeline, timeout_s: float = 5.0) -> dict:
    """Counters of every actor; an actor that is restarting shows as {"available": False} (never raises)."""
    consumers = await _gather("status", pipeline.consumers, timeout_s)
    shards = await _gather("stats", pipeline.shards, timeout_s)
    persisters = await _gather("stats", pipeline.persisters, timeout_s)
    answering = [c for c in consumers if c.get("available")]
    return {
        "consumers": consumers,
        "shards": shards,
        "persisters": persisters,
        "scorer": (await _gather("stats", [pipeline.scorer], timeout_s))[0],
        "durable": sum(c.get("durable", 0) for c in answering),
        "dead_lettered": sum(c.get("dead_lettered", 0) for c in answering),
        "lag": sum(c.get("lag_total", 0) for c in answering),
        "rewinds": sum(c.get("rewinds", 0) for c in answering),
        "restarting": sum(not x.get("available") for x in (*consumers, *shards, *persisters)),
    }


async def _gather(method: str, actors: list, timeout_s: float) -> list[dict]:
    async def one(actor) -> dict:
        if actor is None:
            return {"available": False, "error": "not created"}
        try:
            return {"available": True, **await asyncio.wait_for(getattr(actor, method).remote(), timeout_s)}
        except Exception as error:  # restarting, dead, or slow: a status view must never die of it
            return {"available": False, "error": repr(error)[:200]}

    return list(await asyncio.gather(*(one(a) for a in actors)))


def _actor(name: str):
    try:
        return ray.get_actor(name)
    except ValueError:
        return None


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
    """Ask the supervisor to stop consumers cleanly (in-flight batches finish and commit), then the scorer and
    the other actors; then remove the supervisor itself."""
    if pipeline.supervisor is None:
        return
    try:
        await asyncio.wait_for(pipeline.supervisor.stop.remote(timeout_s), timeout_s + 30)
    finally:
        ray.kill(pipeline.supervisor, no_restart=True)
