"""Drain the preloaded topic through the Ray pipeline and measure it (one run, Ray already initialised).

Timing is the consumers' own: from the start of the first poll that returned readings
(`first_poll_at`) to the acknowledgement of the last batch (`last_ack_at`: the persistence actor
returned, so the batch's transaction committed — readings, events, offsets — and its Redis
projections were written). Every ~0.25 s the watcher records the readings covered by stored offsets
in PostgreSQL (the throughput curve), the consumers' lag (fetch-based watermarks, KAFKA_NOTES.md) and
the RSS of every actor process. Once the consumers report all N durable, the actors' counters give the
per-stage seconds; the pipeline is then stopped (gracefully; killed if the run was interrupted).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import ray

from autoins.bench.queries import server_progress
from autoins.bench.sampling import CpuMeter, RssPeaks, Timeline
from autoins.errors import UserFacingError
from autoins.pipeline import Pipeline, pipeline_status, start_pipeline, stop_pipeline
from config.settings import Settings
from storage.postgres.event_store import PostgresEventStore
from storage.postgres.pool import create_pool

STAGES = (
    ("consumer", "poll_s", "Kafka poll (incl. waiting for the fetch)"),
    ("consumer", "prepare_s", "decode + validate + columns + shard blobs"),
    ("consumer", "dlq_s", "dead letters to Kafka"),
    ("consumer", "ack_wait_s", "consumer blocked on the oldest in-flight batch"),
    ("shard", "decode_s", "shard: msgpack decode + group by driver"),
    ("shard", "activation_s", "shard: activation (PostgreSQL read + replay)"),
    ("shard", "fold_s", "shard: fold (trip machine) + passivation"),
    ("persistence", "write_s", "persistence: PostgreSQL transaction"),
    ("persistence", "project_s", "persistence: Redis projections"),
)


@dataclass
class PipelineRun:
    events_per_s: float
    elapsed_s: float
    startup_s: float  # start_pipeline() → first poll: actor processes booting, consumers assigning
    p50_ms: float | None
    p95_ms: float | None
    peak_lag: int
    final_lag: int
    rss_peak_sum_mb: float
    rss_peak_mb: dict[str, float]
    stages_s: dict[str, float]
    cpu_s: dict[str, float]
    cpu_actor_s: dict[str, float]
    server: dict  # PostgreSQL during the drain: WAL written, checkpoints started
    timeline: Timeline
    status: dict = field(repr=False, default_factory=dict)


async def drain(settings: Settings, events: int, *, prefix: str, service_pids: dict[str, int], ray_root: int | None,
                timeout_s: float, interval_s: float = 0.25) -> PipelineRun:
    pool = await create_pool(settings, application_name="autoins-bench-watch", min_size=1, max_size=1)
    store = PostgresEventStore(pool)
    started_at = time.time()
    pipeline = start_pipeline(settings, prefix=prefix)
    graceful = False
    try:
        async with pool.acquire() as conn:
            before = await server_progress(conn)
        run = await _watch(pipeline, store, events, started_at, service_pids, ray_root, timeout_s, interval_s)
        async with pool.acquire() as conn:
            run.server = (await server_progress(conn)).since(before)
        graceful = True
        return run
    finally:
        await stop_after_run(pipeline, graceful)
        await pool.close()


async def _watch(pipeline: Pipeline, store: PostgresEventStore, events: int, started_at: float,
                 service_pids: dict[str, int], ray_root: int | None, timeout_s: float,
                 interval_s: float) -> PipelineRun:
    settings = pipeline.settings
    pids = await actor_pids(pipeline)
    rss = RssPeaks(pids)
    roles = {pid: name for name, pid in pids.items()} | {pid: role for role, pid in service_pids.items()}
    durable_at: list[tuple[float, int]] = []
    lags: list[int] = []
    cpu = CpuMeter()
    deadline = time.monotonic() + timeout_s

    async def consumers_done() -> list[dict]:
        while True:
            statuses = await asyncio.gather(*(c.status.remote() for c in pipeline.consumers))
            for s in statuses:
                if s.get("last_error") and not s.get("running"):
                    raise UserFacingError(f"consumer {s['consumer']} failed: {s['last_error']}")
            lags.append(sum(s.get("lag_total", 0) for s in statuses))
            if not cpu.started and any(s.get("first_poll_at") for s in statuses):
                cpu.start()  # the actors are up: their boot CPU stays out of the figures
            if sum(s["durable"] for s in statuses) >= events:
                return statuses
            await asyncio.sleep(interval_s)

    watcher = asyncio.create_task(consumers_done())
    try:
        while not watcher.done():
            offsets = await store.stored_offsets(settings.kafka_consumer_group, settings.kafka_topic_events)
            durable_at.append((time.time(), sum(offsets.values())))
            rss.sample()
            if len(durable_at) % 4 == 0:
                cpu.sample()
            if time.monotonic() > deadline:
                raise UserFacingError(f"the pipeline made {durable_at[-1][1]:,}/{events:,} readings durable in "
                                      f"{timeout_s:,.0f} s (raise --timeout, or look at the actors' logs)")
            await asyncio.wait({watcher}, timeout=interval_s)
        statuses = watcher.result()
    finally:
        watcher.cancel()
    cpu_s = cpu.finish(roles, ray_root)
    offsets = await store.stored_offsets(settings.kafka_consumer_group, settings.kafka_topic_events)
    durable_at.append((time.time(), sum(offsets.values())))
    status = await pipeline_status(pipeline)

    first_poll_at = min(s["first_poll_at"] for s in statuses if s.get("first_poll_at"))
    last_ack_at = max(s["last_ack_at"] for s in statuses if s.get("last_ack_at"))
    elapsed_s = max(last_ack_at - first_poll_at, 1e-9)
    timeline = Timeline()
    timeline.add(0.0, 0)
    for at, durable in durable_at:
        if at > first_poll_at:
            timeline.add(at - first_poll_at, durable)
    stages: dict[str, float] = {}
    for kind, key, _ in STAGES:
        rows = {"consumer": status["consumers"], "shard": status["shards"], "persistence": status["persisters"]}[kind]
        stages[f"{kind}.{key}"] = round(sum(r.get(key, 0.0) for r in rows), 2)
    cpu_roles, cpu_actor = group_actor_cpu(cpu_s)
    return PipelineRun(
        events_per_s=events / elapsed_s,
        elapsed_s=elapsed_s,
        startup_s=max(0.0, first_poll_at - started_at),
        p50_ms=_worst(statuses, "batch_latency_p50_ms"),
        p95_ms=_worst(statuses, "batch_latency_p95_ms"),
        peak_lag=max(lags, default=0),
        final_lag=lags[-1] if lags else 0,
        rss_peak_sum_mb=round(rss.peak_sum / 2**20, 1),
        rss_peak_mb=rss.peaks_mb(),
        stages_s=stages,
        cpu_s=cpu_roles,
        cpu_actor_s=cpu_actor,
        server={},
        timeline=timeline,
        status=status,
    )


def _worst(statuses: list[dict], key: str) -> float | None:
    """With several consumers the figure is the worst consumer's (each keeps its own last 10k batches)."""
    values = [s[key] for s in statuses if s.get(key) is not None]
    return max(values) if values else None


def group_actor_cpu(cpu: dict[str, float]) -> tuple[dict[str, float], dict[str, float]]:
    """(by role: consumer-0 + consumer-1 … → consumer; per actor)."""
    grouped: dict[str, float] = {}
    per_actor: dict[str, float] = {}
    for name, seconds in cpu.items():
        kind = name.split("-", 1)[0]
        if kind in ("consumer", "shard", "persistence"):
            per_actor[name] = seconds
            grouped[kind] = round(grouped.get(kind, 0.0) + seconds, 2)
        else:
            grouped[name] = seconds
    return grouped, per_actor


async def actor_pids(pipeline: Pipeline) -> dict[str, int]:
    """Waits until every actor answers (their processes are up)."""
    consumers = await asyncio.gather(*(c.status.remote() for c in pipeline.consumers))
    shards = await asyncio.gather(*(s.stats.remote() for s in pipeline.shards))
    persisters = await asyncio.gather(*(p.stats.remote() for p in pipeline.persisters))
    pids = {f"consumer-{c['consumer']}": c["pid"] for c in consumers}
    pids |= {f"shard-{s['shard']}": s["pid"] for s in shards}
    pids |= {f"persistence-{p['persistence']}": p["pid"] for p in persisters}
    return pids


async def stop_after_run(pipeline: Pipeline, graceful: bool) -> None:
    """Graceful after a finished run; after a failure or Ctrl-C the actors are killed at once."""
    if graceful:
        try:
            await asyncio.wait_for(stop_pipeline(pipeline), 60.0)
            return
        except asyncio.CancelledError:
            _kill(pipeline)
            raise
        except Exception:  # a stuck stop: kill them
            pass
    _kill(pipeline)


def _kill(pipeline: Pipeline) -> None:
    for actor in pipeline.actors():
        try:
            ray.kill(actor, no_restart=True)
        except Exception:
            continue
