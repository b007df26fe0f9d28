"""`autoins bench ingest --rate R --duration S`: the pipeline under a steady stream, measured from outside.

Scratch world as for the drain (a database, a private broker and Redis, a topic named after the run), the
supervised pipeline (`autoins.pipeline.start_pipeline`) and the WebSocket app on Serve in the same Ray. Once
the consumers run on the empty topic, a producer process (autoins/bench/paced_producer.py) produces the
simulated fleet at R readings/s for S seconds, plus probe readings for a few probe drivers whose sockets are
open on /ws/drivers/{id}. Meanwhile every ~0.25 s the consumers' lag (summed over partitions, fetch
watermarks as in the drain) is sampled. Then the tail drains, what was stored is verified (every reading
exactly once) and everything is removed, also on Ctrl-C or failure.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from autoins.bench.ingest import ensure_ray, kafka_overrides, redis_version, shape_overrides, shutdown_ray
from autoins.bench.paced_producer import PacedPlan, PacedProducer
from autoins.bench.pipeline_run import STAGES, actor_pids, group_actor_cpu, stop_after_run
from autoins.bench.queries import stored_counts
from autoins.bench.report import machine_info
from autoins.bench.sampling import CpuMeter, busy_percent
from autoins.bench.scratch import Scratch
from autoins.bench.ws_probes import ProbeViewers
from autoins.errors import UserFacingError
from autoins.pipeline import Pipeline, durable_messages, start_pipeline, wait_until_drained
from autoins.simulate import register_drivers
from config.names import WS_APP
from config.settings import Settings
from domain.simulator import Population
from storage.postgres.drivers import NewDriver, insert_missing_drivers
from storage.postgres.pool import connect

LAG_P95_GOAL = 500  # issue 11: consumer lag p95 below this many messages at 10,000 readings/s
WS_GOAL_MS = 250.0  # issue 11: event → WebSocket p50 and p95 below this
SAMPLE_EVERY_S = 0.25


@dataclass(frozen=True)
class SteadyOptions:
    rate: float = 10_000.0
    duration_s: float = 120.0
    drivers: int = 2_000
    probes: int = 5  # probe drivers, each with its own socket
    probe_interval_s: float = 0.5  # per probe driver: far apart, so a batch never coalesces two of its probes
    seed: int = 7
    consumers: int | None = None  # None: the settings' value
    shards: int | None = None
    persistence: int | None = None
    batch_size: int | None = None
    partitions: int | None = None
    private_broker: bool = True
    private_redis: bool = True
    ws_url: str | None = None  # the base URL of a Serve already running (tests); None: start one on a free port
    timeout_s: float = 120.0  # allowed for the tail to drain once the producer stops
    warmup_s: float = 5.0  # produced at the rate before the measured window (fresh actors' first batches are slow)
    command: str = "autoins bench ingest --rate 10000 --duration 120"


def run_steady_benchmark(base: Settings, options: SteadyOptions, console: Console) -> dict:
    """The whole run; progress on `console`. Raises UserFacingError for anything a person can fix."""
    loadavg_before = round(os.getloadavg()[0], 2)
    busy_before = busy_percent(1.0)
    scratch = Scratch(base)
    ray_started = False
    app: tuple[str, bool] | None = None
    try:
        postgres = asyncio.run(scratch.postgres_version())
        now = datetime.now(UTC)
        redis_url = scratch.start_redis(options.private_redis)
        pipe = base.with_overrides(
            database_url=asyncio.run(scratch.create_database("steady", now)), redis_url=redis_url,
            kafka_consumer_group=f"bench-steady-{scratch.run_id}", **kafka_overrides(scratch, options.private_broker),
            **shape_overrides(options),
        )
        scratch.create_topics(pipe)
        machine = {**machine_info(postgres, redis_version(redis_url)), "loadavg_1m_before": loadavg_before,
                   "cpu_busy_pct_before": busy_before}
        probes = tuple(f"probe-{scratch.run_id}-{n}" for n in range(options.probes))
        asyncio.run(register_drivers(pipe, Population.generate(options.drivers, options.seed).truth_table()))
        asyncio.run(_register_probes(pipe, probes))

        _haproxy_on_free_ports(base)
        ray_started = ensure_ray(base, scratch.run_id)
        ws_url, app = _deploy_ws(pipe, options, scratch.run_id, own_ray=ray_started)
        plan = PacedPlan(settings=pipe, drivers=options.drivers, seed=options.seed, rate=options.rate,
                         duration_s=options.warmup_s + options.duration_s, probe_drivers=probes,
                         probe_interval_s=options.probe_interval_s, now_ms=int(now.timestamp() * 1000))
        smallest = min(pipe.consumer_min_batch_size, pipe.consumer_batch_size)
        console.print(f"steady state: {options.rate:,.0f} readings/s for {options.duration_s:,.0f} s through the "
                      f"pipeline ({pipe.kafka_num_consumers} consumer(s), {pipe.num_shards} shards, "
                      f"{pipe.num_persistence} persistence, batches of {smallest:,}–{pipe.consumer_batch_size:,}), "
                      f"{len(probes)} WebSocket probes …", highlight=False)
        measured = asyncio.run(_measure(pipe, plan, options, ws_url, scratch, ray_started, console))
        stored = asyncio.run(_stored(pipe))
        result = _result(options, pipe, machine, measured, stored)
        result["run_id"] = scratch.run_id
        return result
    finally:
        if app is not None and not ray_started:
            _remove_ws(*app)
        if ray_started:
            shutdown_ray()
        for problem in scratch.close():
            console.print(f"[yellow]cleanup:[/yellow] {escape(str(problem))}", highlight=False)


@dataclass
class Measured:
    produced: int
    probes_sent: int
    probes_received: int
    achieved_rate: float
    window_s: float
    durable_in_window: int
    lags: list[int]
    targets: list[int]
    delays_ms: list[float]
    catch_up_s: float
    batches: int
    polled: int
    final_lag: int
    status: dict
    cpu_s: dict
    cpu_actor_s: dict
    missing_probes_at_s: list[float]  # seconds into the window of each probe that never reached its socket


async def _measure(settings: Settings, plan: PacedPlan, options: SteadyOptions, ws_url: str, scratch: Scratch,
                   ray_started: bool, console: Console) -> Measured:
    pipeline = start_pipeline(settings, prefix=f"bench-{scratch.run_id}-")
    viewers = ProbeViewers(settings, ws_url, plan.probe_drivers)
    producer = PacedProducer(plan)
    graceful = False
    try:
        pids = await actor_pids(pipeline)
        await _consumers_running(pipeline, timeout_s=60.0)
        await viewers.open()
        producer.start()
        await _wait_for(producer.producing.is_set, 120.0, "the producer process to start")
        window = Window(measured_from=time.time() + options.warmup_s)
        await _sample(pipeline, producer, plan, viewers, window, console)
        window.ended_at = time.time()
        window.durable_at_end = await durable_messages(settings)
        after = await _consumer_totals(pipeline)
        sent = producer.result(timeout_s=90.0)
        if sent.error:
            raise UserFacingError(f"the producer failed: {sent.error}")
        drained_from = time.monotonic()
        status = await wait_until_drained(pipeline, sent.readings + sent.probes, options.timeout_s)
        catch_up_s = time.monotonic() - drained_from
        await asyncio.sleep(1.0)  # the last probes' messages are on their way to the sockets
        roles = {pid: name for name, pid in pids.items()} | {pid: role for role, pid in scratch.pids().items()}
        roles[producer.pid] = "producer"
        cpu_roles, cpu_actor = group_actor_cpu(window.cpu.finish(roles, os.getpid() if ray_started else None))
        graceful = True
    finally:
        await viewers.close()
        producer.stop()
        await stop_after_run(pipeline, graceful)
    window_s = window.ended_at - window.measured_from
    return Measured(
        produced=sent.readings, probes_sent=sent.probes, probes_received=len(viewers.received),
        achieved_rate=sent.readings / max(sent.ended_at - sent.started_at, 1e-9), window_s=window_s,
        durable_in_window=window.durable_at_end - window.durable_at_start, lags=window.lags, targets=window.targets,
        delays_ms=[d for ts, d in viewers.delays if ts / 1000 >= window.measured_from],
        catch_up_s=catch_up_s, batches=after["batches"] - window.totals_at_start["batches"],
        polled=after["polled"] - window.totals_at_start["polled"], final_lag=status["lag"], status=status,
        cpu_s=cpu_roles, cpu_actor_s=cpu_actor,
        missing_probes_at_s=[round(ts / 1000 - window.measured_from, 2) for ts in sent.probe_ts_ms
                             if ts not in viewers.received_ts_ms],
    )


@dataclass
class Window:
    """The measured part of the run: from `measured_from` (after the warm-up) to the producer's end."""

    measured_from: float
    ended_at: float = 0.0
    durable_at_start: int = 0
    durable_at_end: int = 0
    totals_at_start: dict = field(default_factory=lambda: {"batches": 0, "polled": 0})
    lags: list[int] = field(default_factory=list)
    targets: list[int] = field(default_factory=list)
    cpu: CpuMeter = field(default_factory=CpuMeter)


async def _sample(pipeline: Pipeline, producer: PacedProducer, plan: PacedPlan, viewers: ProbeViewers, window: Window,
                  console: Console) -> None:
    """Lag and batch targets every SAMPLE_EVERY_S while the producer produces (kept once the warm-up is over); a
    progress bar meanwhile."""
    columns = (TextColumn("producing"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[now]}"),
               TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("steady", total=plan.readings, now="")
        samples = 0
        while not producer.finished.is_set():
            statuses = await _consumer_statuses(pipeline)
            lag = sum(s.get("lag_total", 0) for s in statuses) if statuses else None
            target = max(s.get("batch_target", 0) for s in statuses) if statuses else None
            if not window.cpu.started and time.time() >= window.measured_from:
                window.cpu.start()
                window.durable_at_start = await durable_messages(pipeline.settings)
                window.totals_at_start = await _consumer_totals(pipeline)
            if window.cpu.started and statuses:
                window.lags.append(lag)
                window.targets.append(target)
            samples += 1
            if samples % 4 == 0:
                window.cpu.sample()  # the producer process exits before the end: keep what it used
            delays = sorted(d for _, d in viewers.delays)
            warming = "" if window.cpu.started else "warm-up · "
            progress.update(task, completed=producer.produced.value, now=(
                f"{warming}lag {_n(lag)} · batch ≤ {_n(target)} · "
                f"WebSocket p50 {_n(quantile(delays, 0.5))} ms ({len(delays)} probes)"))
            await asyncio.sleep(SAMPLE_EVERY_S)
        progress.update(task, completed=producer.produced.value)


async def _consumer_statuses(pipeline: Pipeline, timeout_s: float = 2.0) -> list[dict]:
    async def one(consumer) -> dict | None:
        try:
            return await asyncio.wait_for(consumer.status.remote(), timeout_s)
        except Exception:  # restarting: the supervisor brings it back; the sample skips it
            return None

    return [s for s in await asyncio.gather(*(one(c) for c in pipeline.consumers)) if s is not None]


async def _consumer_totals(pipeline: Pipeline) -> dict:
    statuses = await _consumer_statuses(pipeline)
    return {"batches": sum(s["batches"] for s in statuses), "polled": sum(s["polled"] for s in statuses)}


async def _consumers_running(pipeline: Pipeline, timeout_s: float) -> None:
    """Every consumer assigned and polling the empty topic (producing before that would start with a backlog)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        statuses = await _consumer_statuses(pipeline)
        if len(statuses) == len(pipeline.consumers) and all(s.get("running") and s["partitions"] for s in statuses):
            await asyncio.sleep(1.0)  # their first fetches
            return
        await asyncio.sleep(0.25)
    raise UserFacingError(f"the consumers were not running after {timeout_s:.0f} s (look at the actors' logs)")


async def _wait_for(probe, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not probe():
        if time.monotonic() > deadline:
            raise UserFacingError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        await asyncio.sleep(0.05)


def _haproxy_on_free_ports(base: Settings) -> None:
    """The ingress the product uses (PERF_NOTES); HAProxy's own listeners default to fixed ports, which a second
    Serve on this machine (another run, the demo) would already hold. Read when Ray starts."""
    from autoins.stack import free_tcp_port

    if base.serve_haproxy:
        os.environ.setdefault("RAY_SERVE_ENABLE_HA_PROXY", "1")
        os.environ.setdefault("RAY_SERVE_HAPROXY_METRICS_PORT", str(free_tcp_port()))
        os.environ.setdefault("RAY_SERVE_HAPROXY_STATS_PORT", str(free_tcp_port()))


def _deploy_ws(settings: Settings, options: SteadyOptions, run_id: str, *, own_ray: bool) -> tuple[str, tuple]:
    """The LiveGateway app on Serve; returns its ws:// base URL and (app name, whether we started Serve). In
    our own Ray it is the product's app and route; in a Ray that is not ours it gets a name and route of its
    own, so the run never replaces someone's `ws` app."""
    from ray import serve

    from autoins.stack import free_tcp_port
    from deployments.builder import WS_ROUTE, build_ws_app

    name, route = (WS_APP, WS_ROUTE) if own_ray else (f"{WS_APP}-bench-{run_id}", f"/bench-{run_id}{WS_ROUTE}")
    started = options.ws_url is None
    base_url = options.ws_url
    if started:
        port = free_tcp_port()
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        base_url = f"http://127.0.0.1:{port}"
    serve.run(build_ws_app(settings), name=name, route_prefix=route)
    return base_url.replace("http://", "ws://", 1) + route, (name, started)


def _remove_ws(name: str, started_serve: bool) -> None:
    from ray import serve

    try:
        serve.delete(name)
        if started_serve:
            serve.shutdown()
    except Exception:  # teardown never hides the run's own outcome
        pass


async def _register_probes(settings: Settings, probes: tuple[str, ...]) -> None:
    conn = await connect(settings, application_name="autoins-bench")
    try:
        await insert_missing_drivers(conn, [NewDriver(d, "Probe", d, f"{d}@example.test", "UTC") for d in probes])
    finally:
        await conn.close()


async def _stored(settings: Settings) -> dict:
    conn = await connect(settings, application_name="autoins-bench-verify")
    try:
        return {**await stored_counts(conn), "durable_messages": await durable_messages(settings)}
    finally:
        await conn.close()


def quantile(values: list[float] | list[int], q: float) -> float | None:
    """Nearest-rank quantile of already sorted values (None when there are none)."""
    if not values:
        return None
    return values[min(len(values) - 1, max(0, math.ceil(q * len(values)) - 1))]


def _n(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def _worst(statuses: list[dict], key: str) -> float | None:
    values = [s[key] for s in statuses if s.get(key) is not None]
    return max(values) if values else None


def _stages_per_batch(status: dict) -> dict[str, float]:
    """Each stage's mean ms per batch of the actor kind doing it, over the whole run (warm-up included): where
    a steady batch's time goes."""
    rows = {"consumer": status["consumers"], "shard": status["shards"], "persistence": status["persisters"]}
    out = {}
    for kind, key, _ in STAGES:
        batches = sum(r.get("batches", 0) for r in rows[kind])
        if batches:
            out[f"{kind}.{key}"] = round(1000 * sum(r.get(key, 0.0) for r in rows[kind]) / batches, 2)
    return out


def _result(options: SteadyOptions, pipe: Settings, machine: dict, m: Measured, stored: dict) -> dict:
    lags, delays, targets = sorted(m.lags), sorted(m.delays_ms), sorted(m.targets)
    lag_p95, ws_p50, ws_p95 = quantile(lags, 0.95), quantile(delays, 0.5), quantile(delays, 0.95)
    lag_met = lag_p95 is not None and lag_p95 < LAG_P95_GOAL
    ws_met = ws_p95 is not None and ws_p50 < WS_GOAL_MS and ws_p95 < WS_GOAL_MS
    expected = m.produced + m.probes_sent
    verified = (stored["rows"] == stored["distinct_ids"] == stored["durable_messages"] == expected
                and m.final_lag == 0)
    return {
        "mode": "steady",
        "rate": options.rate,
        "achieved_rate": round(m.achieved_rate),
        "durable_rate": round(m.durable_in_window / m.window_s) if m.window_s > 0 else None,
        "lag_p50": quantile(lags, 0.5),
        "lag_p95": lag_p95,
        "ws_p50_ms": None if ws_p50 is None else round(ws_p50, 1),
        "ws_p95_ms": None if ws_p95 is None else round(ws_p95, 1),
        "goals_met": lag_met and ws_met,
        "goals": {"lag_p95_below": LAG_P95_GOAL, "ws_p50_p95_below_ms": WS_GOAL_MS, "lag_met": lag_met,
                  "ws_met": ws_met},
        "duration_s": options.duration_s,
        "warmup_s": options.warmup_s,
        "window_s": round(m.window_s, 1),
        "lag_max": lags[-1] if lags else None,
        "lag_samples": len(lags),
        "ws_max_ms": round(delays[-1], 1) if delays else None,
        "probes_sent": m.probes_sent,
        "probes_received": m.probes_received,
        "probes_timed": len(delays),  # received, and produced after the warm-up
        "probes_missing_at_s": m.missing_probes_at_s[:20],
        "batches": m.batches,
        "mean_batch": round(m.polled / m.batches) if m.batches else None,
        "batch_target_p50": quantile(targets, 0.5),
        "batch_target_max": targets[-1] if targets else None,
        "catch_up_s": round(m.catch_up_s, 1),
        "batch_latency_p50_ms": _worst(m.status["consumers"], "batch_latency_p50_ms"),
        "batch_latency_p95_ms": _worst(m.status["consumers"], "batch_latency_p95_ms"),
        "stages_ms_per_batch": _stages_per_batch(m.status),
        "verified": verified,
        "readings": m.produced,
        "rows_stored": stored["rows"],
        "distinct_event_ids": stored["distinct_ids"],
        "durable_messages": stored["durable_messages"],
        "final_lag": m.final_lag,
        "dead_lettered": m.status.get("dead_lettered", 0),
        "rewinds": m.status.get("rewinds", 0),
        "domain_events": stored["domain_events"],
        "drivers": options.drivers,
        "shape": {
            "consumers": pipe.kafka_num_consumers, "shards": pipe.num_shards, "persistence": pipe.num_persistence,
            "min_batch_size": min(pipe.consumer_min_batch_size, pipe.consumer_batch_size),
            "batch_size": pipe.consumer_batch_size, "linger_ms": pipe.consumer_linger_ms,
            "partitions": pipe.kafka_partitions, "max_inflight_batches": pipe.consumer_max_inflight_batches,
        },
        "services": {"broker": "private" if options.private_broker else "configured",
                     "redis": "private" if options.private_redis else "configured"},
        "cpu_s": m.cpu_s,
        "cpu_actor_s": m.cpu_actor_s,
        "machine": machine,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": options.command,
    }
