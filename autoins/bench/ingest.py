"""`autoins bench ingest`, the run itself: scratch world → preload → Ray pipeline → raw limit → verdict.

The pipeline and the raw limit run one after the other, never together (they would share the same
two cores); the pipeline first, and Ray — when this run started it — is shut down before the raw
limit so its idle processes do not tax it. Everything created is removed at the end, also on
Ctrl-C or failure (`Scratch.close`, the pipeline's actors, Ray if we started it).
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from datetime import UTC, datetime

from rich.console import Console
from rich.markup import escape

from autoins.bench.pipeline_run import PipelineRun, drain
from autoins.bench.preload import preload
from autoins.bench.queries import stored_counts
from autoins.bench.raw_limit import RawRun, run_raw_limit
from autoins.bench.report import machine_info
from autoins.bench.sampling import Timeline, busy_percent, ray_descendants, wait_exited
from autoins.bench.scratch import Scratch
from autoins.errors import UserFacingError
from autoins.pipeline import durable_messages
from autoins.simulate import register_drivers
from config.settings import Settings
from domain.simulator import Population
from storage.postgres.pool import connect

RAY_OBJECT_STORE_BYTES = 400 * 1024 * 1024  # batches are ~1 MB; the default (30% of RAM) is pointless here


@dataclass(frozen=True)
class IngestOptions:
    events: int
    drivers: int = 2_000
    seed: int = 7
    consumers: int | None = None  # None: the settings' value
    shards: int | None = None
    persistence: int | None = None
    batch_size: int | None = None
    partitions: int | None = None
    private_broker: bool = True
    private_redis: bool = True
    raw: bool = True
    timeout_s: float | None = None
    command: str = "autoins bench ingest"


@dataclass(frozen=True)
class IngestOutcome:
    result: dict
    pipeline_timeline: Timeline
    raw_timeline: Timeline | None


def run_ingest_benchmark(base: Settings, options: IngestOptions, console: Console) -> IngestOutcome:
    """The whole run; progress on `console`. Raises UserFacingError for anything a person can fix."""
    loadavg_before = round(os.getloadavg()[0], 2)
    busy_before = busy_percent(1.0)  # is anything else running? (the load average lags by minutes)
    scratch = Scratch(base)
    ray_started = False
    try:
        postgres = asyncio.run(scratch.postgres_version())
        now = datetime.now(UTC)
        kafka = kafka_overrides(scratch, options.private_broker)
        redis_url = scratch.start_redis(options.private_redis)
        shape = shape_overrides(options)
        pipe = base.with_overrides(
            database_url=asyncio.run(scratch.create_database("pipeline", now)), redis_url=redis_url,
            kafka_consumer_group=f"bench-pipeline-{scratch.run_id}", **kafka, **shape,
        )
        scratch.create_topics(pipe)
        machine = {**machine_info(postgres, redis_version(redis_url)), "loadavg_1m_before": loadavg_before,
                   "cpu_busy_pct_before": busy_before}

        population = Population.generate(options.drivers, options.seed)
        asyncio.run(register_drivers(pipe, population.truth_table()))
        loaded = preload(pipe, population, options.events, options.seed, int(now.timestamp() * 1000), console)
        timeout_s = options.timeout_s or 120.0 + options.events / 2_000

        ray_started = ensure_ray(base, scratch.run_id)
        console.print(f"draining {options.events:,} readings through the pipeline "
                      f"({pipe.kafka_num_consumers} consumer(s), {pipe.num_shards} shards, "
                      f"{pipe.num_persistence} persistence, batches of up to {pipe.consumer_batch_size:,}) …",
                      highlight=False)
        run = asyncio.run(drain(
            pipe, options.events, prefix=f"bench-{scratch.run_id}-", service_pids=scratch.pids(),
            ray_root=os.getpid() if ray_started else None, timeout_s=timeout_s,
        ))
        stored = asyncio.run(_stored(pipe))
        if ray_started:
            ray_processes = ray_descendants(set(scratch.pids().values()))
            shutdown_ray()
            ray_started = False
            wait_exited(ray_processes, timeout_s=20.0)

        raw = raw_rows = None
        if options.raw:
            raw_settings = base.with_overrides(
                database_url=asyncio.run(scratch.create_database("raw", now)), redis_url=redis_url,
                kafka_consumer_group=f"bench-raw-{scratch.run_id}", **kafka, **shape,
            )
            console.print("raw limit: one plain process, same topic, same transaction …", highlight=False)
            raw = asyncio.run(run_raw_limit(raw_settings, options.events, batch_size=pipe.consumer_batch_size,
                                            timeout_s=timeout_s, service_pids=scratch.pids()))
            raw_rows = asyncio.run(_stored(raw_settings))["rows"]
        result = _result(options, pipe, machine, loaded.seconds, run, stored, raw, raw_rows)
        result["run_id"] = scratch.run_id  # names its databases (autoins_bench_*_<run_id>) and topics
        return IngestOutcome(result, run.timeline, raw.timeline if raw else None)
    finally:
        if ray_started:
            shutdown_ray()
        for problem in scratch.close():
            console.print(f"[yellow]cleanup:[/yellow] {escape(str(problem))}", highlight=False)


def kafka_overrides(scratch: Scratch, private_broker: bool) -> dict:
    """A topic (and DLQ) named after the run, on the private broker or the configured one."""
    topic = f"bench.events.{scratch.run_id}"
    return {
        "kafka_bootstrap_servers": scratch.start_broker(private_broker),
        "kafka_topic_events": topic,
        "kafka_topic_dlq": f"{topic}.dlq",
    }


def shape_overrides(options) -> dict:
    """The pipeline-shape options that were given (None: the settings' value)."""
    shape = {
        "kafka_num_consumers": options.consumers,
        "num_shards": options.shards,
        "num_persistence": options.persistence,
        "consumer_batch_size": options.batch_size,
        "persistence_batch_size": options.batch_size,
        "kafka_partitions": options.partitions,
    }
    return {k: v for k, v in shape.items() if v is not None}


def redis_version(url: str) -> str:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        return str(client.info("server").get("redis_version", "?"))
    except redis.exceptions.RedisError as error:
        raise UserFacingError(f"cannot reach Redis at {url}: {error}") from None
    finally:
        client.close()


def ensure_ray(base: Settings, run_id: str) -> bool:
    """Use a Ray this process already joined; else join RAY_ADDRESS; else start a local one (2 CPUs, no
    dashboard, auth off). True when we connected and must shut it down."""
    import ray

    if ray.is_initialized():
        return False
    try:
        if base.ray_address:
            ray.init(address=base.ray_address, namespace=f"autoins-bench-{run_id}", configure_logging=False,
                     log_to_driver=False)
        else:
            os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # RAY_NOTES.md: local clusters need no token
            # address="local": never join a head another user started on this machine (ray.init would)
            ray.init(address="local", num_cpus=2, include_dashboard=False, namespace=f"autoins-bench-{run_id}",
                     object_store_memory=RAY_OBJECT_STORE_BYTES, configure_logging=False, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise UserFacingError(f"cannot start or join Ray ({base.ray_address or 'local'}): {error}") from None
    return True


def shutdown_ray() -> None:
    import ray

    ray.shutdown()


async def _stored(settings: Settings) -> dict:
    conn = await connect(settings, application_name="autoins-bench-verify")
    try:
        return {**await stored_counts(conn), "durable_messages": await durable_messages(settings)}
    finally:
        await conn.close()


def _result(options: IngestOptions, pipe: Settings, machine: dict, preload_s: float, run: PipelineRun,
            stored: dict, raw: RawRun | None, raw_rows: int | None) -> dict:
    n = options.events
    verified = (stored["rows"] == n and stored["distinct_ids"] == n and stored["durable_messages"] == n
                and run.final_lag == 0 and (raw is None or raw_rows == n))
    return {
        "events": n,
        "events_per_s": round(run.events_per_s),
        "raw_events_per_s": round(raw.events_per_s) if raw else None,
        "ratio": round(run.events_per_s / raw.events_per_s, 3) if raw else None,
        "p95_persist_ms": run.p95_ms,
        "peak_lag": run.peak_lag,
        "rss_mb": run.rss_peak_sum_mb,
        "p50_persist_ms": run.p50_ms,
        "elapsed_s": round(run.elapsed_s, 2),
        "verified": verified,
        "rows_stored": stored["rows"],
        "distinct_event_ids": stored["distinct_ids"],
        "durable_messages": stored["durable_messages"],
        "final_lag": run.final_lag,
        "dead_lettered": run.status.get("dead_lettered", 0),
        "rewinds": run.status.get("rewinds", 0),
        "domain_events": stored["domain_events"],
        "trips": stored["trips"],
        "drivers": options.drivers,
        "shape": {
            "consumers": pipe.kafka_num_consumers,
            "shards": pipe.num_shards,
            "persistence": pipe.num_persistence,
            "batch_size": pipe.consumer_batch_size,
            "partitions": pipe.kafka_partitions,
            "max_inflight_batches": pipe.consumer_max_inflight_batches,
        },
        "services": {"broker": "private" if options.private_broker else "configured",
                     "redis": "private" if options.private_redis else "configured"},
        "preload_s": round(preload_s, 1),
        "startup_s": round(run.startup_s, 1),
        "rss_peak_mb": run.rss_peak_mb,
        "stages_s": run.stages_s,
        "cpu_s": run.cpu_s,
        "cpu_actor_s": run.cpu_actor_s,
        "postgres_server": run.server,
        "raw": None if raw is None else {
            "events_per_s": round(raw.events_per_s),
            "elapsed_s": round(raw.elapsed_s, 2),
            "p50_ms": raw.p50_ms,
            "p95_ms": raw.p95_ms,
            "rss_mb": raw.rss_peak_mb,
            "rows_stored": raw_rows,
            "rejected": raw.rejected,
            "stages_s": raw.stages_s,
            "cpu_s": raw.cpu_s,
            "postgres_server": raw.server,
        },
        "machine": machine,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": options.command,
    }
