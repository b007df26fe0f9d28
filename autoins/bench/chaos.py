"""`autoins bench chaos`: a fixed fleet through the whole system twice — once while processes are SIGKILLed (and,
with `--node-loss`, a worker node is removed), once without faults — and what differs.

One command, one local Ray cluster of its own (a head, plus 2 worker nodes with `--node-loss`), so every victim
is a process on this machine and no other cluster is touched. Both runs read the same topic (its own consumer
group and database each) with the same risk model (a small artifact trained into the scratch directory), so a
correct system stores the same readings, trips, domain events, risk scores and premiums in both.

The faulty run produces the fleet at a steady rate while the pipeline, the risk model and the API (2 replicas each,
behind the configured ingress) run, kills one process at a time at evenly spaced moments (the next only once the
last is over), and probes the API throughout (autoins.bench.chaos_probe). Per fault it reports how long until
ingest resumed and until the role answered from a new process, and the API requests that failed meanwhile.
"""

from __future__ import annotations

import asyncio
import os
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

from rich.console import Console
from rich.markup import escape

from autoins.bench.chaos_faults import (
    FAULT_KINDS,
    NODE_LOSS,
    PIPELINE_KINDS,
    PROCESS_TITLES,
    Fault,
    kill,
    pipeline_actor_pid,
    pipeline_size,
    titled_pids,
    wait_until_back,
)
from autoins.bench.chaos_probe import ApiProber
from autoins.bench.preload import preload
from autoins.bench.queries import copy_policies, log_digests, log_rows, scoring_progress, stored_counts
from autoins.bench.report import machine_info
from autoins.bench.scratch import Scratch
from autoins.errors import UserFacingError
from autoins.ingress import ingress_environment
from autoins.pipeline import durable_messages, start_pipeline, stop_pipeline
from autoins.simulate import register_drivers
from autoins.stack import free_tcp_port
from config.settings import Settings
from domain.simulator import Population
from storage.postgres.pool import connect

MB = 1024 * 1024
# Node death in ~2 s instead of ~30 s (RAY_NOTES.md): a lost node's actors move while the fleet still drives.
FAST_NODE_DEATH = {"health_check_period_ms": 500, "health_check_failure_threshold": 4, "health_check_timeout_ms": 500}
# The shape both runs use: every role has a second instance (a killed consumer's partitions are not the only
# ones moving), two API replicas (the ingress has somewhere to send a retry), and small batches (a kill always
# lands on work in flight). No log ticks: both runs read one topic, so ticks the faulty run wrote while idle would
# reach the clean run at another point of its reading (docs/DOMAIN.md §3); the fleet's own readings move log time.
SHAPE = {"kafka_num_consumers": 2, "num_shards": 2, "num_persistence": 2, "consumer_batch_size": 2_000,
         "persistence_batch_size": 2_000, "kafka_partitions": 4, "api_num_replicas": 2, "ml_num_replicas": 2,
         "db_pool_size": 2, "db_max_overflow": 2, "cache_warm_budget_s": 0, "log_tick_idle_s": 0}


@dataclass(frozen=True)
class ChaosOptions:
    events: int = 60_000
    drivers: int = 200
    rate: float = 2_000.0  # readings/s produced during the faulty run
    kills: int = 3
    kinds: tuple[str, ...] = FAULT_KINDS
    explicit: bool = False  # kill exactly `kinds`, in order, instead of `kills` random ones
    node_loss: bool = False
    seed: int = 7
    recovery_timeout_s: float = 60.0  # per fault
    timeout_s: float = 300.0  # for each run to finish
    command: str = "autoins bench chaos"


def run_chaos_benchmark(base: Settings, options: ChaosOptions, console: Console) -> dict:
    """The whole comparison; progress on `console`. Raises UserFacingError for what a person can fix."""
    from autoins.bench.chaos_faults import plan_faults

    try:
        plan = plan_faults(list(options.kinds), options.kills, options.seed, explicit=options.explicit)
    except ValueError as error:
        raise UserFacingError(str(error)) from None
    if options.node_loss:
        plan.insert(len(plan) // 2, NODE_LOSS)
    scratch = Scratch(base)
    cluster = None
    try:
        postgres = asyncio.run(scratch.postgres_version())
        now = datetime.now(UTC)
        faulty, clean = _world(base, scratch, now)
        population = Population.generate(options.drivers, options.seed)
        asyncio.run(_register(faulty, clean, population))
        with console.status("training a small risk model for both runs …"):
            model_version = _train(faulty, options.seed)
        machine = machine_info(postgres, "private")
        cluster, workers = _start_cluster(faulty, options.node_loss, console)
        _deploy(faulty, console)
        faulty_run = asyncio.run(_faulty_run(faulty, options, population, plan, now, cluster, workers, console))
        console.print("fault-free run: the same topic, its own consumer group and database …", highlight=False)
        clean_run = asyncio.run(_clean_run(clean, options, console))
        result = _result(options, machine, model_version, faulty_run, clean_run, asyncio.run(_stored(faulty)),
                         asyncio.run(_stored(clean)))
        unequal = [name for name, c in result["compared"].items() if not c["equal"]]
        result["differences"] = asyncio.run(_differences(faulty, clean, unequal))
        result["run_id"] = scratch.run_id  # names its databases (autoins_bench_*_<run_id>) and topic
        return result
    finally:
        _stop_cluster(cluster)
        for problem in scratch.close():
            console.print(f"[yellow]cleanup:[/yellow] {escape(str(problem))}", highlight=False)


# -- the world -------------------------------------------------------------------------------------------------


def _world(base: Settings, scratch: Scratch, now: datetime) -> tuple[Settings, Settings]:
    redis_url = scratch.start_redis(private=True)
    bootstrap = scratch.start_broker(private=True)
    topic = f"chaos.events.{scratch.run_id}"
    common = {"redis_url": redis_url, "kafka_bootstrap_servers": bootstrap, "kafka_topic_events": topic,
              "kafka_topic_dlq": f"{topic}.dlq", "models_dir": scratch.work_dir / "models", "model_version": None,
              "http_host": "127.0.0.1", "http_port": free_tcp_port(), **SHAPE}
    faulty = base.with_overrides(database_url=asyncio.run(scratch.create_database("faulty", now)),
                                 kafka_consumer_group=f"chaos-faulty-{scratch.run_id}", **common)
    clean = base.with_overrides(database_url=asyncio.run(scratch.create_database("clean", now)),
                                kafka_consumer_group=f"chaos-clean-{scratch.run_id}", **common)
    scratch.create_topics(faulty)
    return faulty, clean


async def _register(faulty: Settings, clean: Settings, population: Population) -> None:
    """The fleet's drivers in both databases, each with an active policy (the scorer reprices it: premiums are
    compared too); the clean run gets the same policy rows, ids included."""
    from autoins.seed import demo_policy
    from storage.postgres import admin_queries

    truth = population.truth_table()
    for settings in (faulty, clean):
        await register_drivers(settings, truth)
    source = await connect(faulty, application_name="autoins-bench-chaos")
    target = await connect(clean, application_name="autoins-bench-chaos")
    try:
        today = datetime.now(UTC).date()
        await admin_queries.insert_missing_policies(source, [demo_policy(t.driver_id, today) for t in truth])
        await copy_policies(source, target)
    finally:
        await source.close()
        await target.close()


def _train(settings: Settings, seed: int) -> str:
    """A small real artifact (~3 s): both runs score with it."""
    from domain.risk_model.dataset import DatasetSpec, build_dataset
    from domain.risk_model.spec import TrainingParams
    from domain.risk_model.training import train
    from storage.files.model_artifacts import save_artifact

    data = build_dataset(DatasetSpec(seed=seed, drivers=40, days=1))
    result = train(data, TrainingParams(seed=seed, gbm_max_iter=30), {"drivers": 40.0, "days": 1.0})
    path = save_artifact(settings.models_dir, result.spec, result.estimator, created_at="2026-01-01T00:00:00Z",
                         signing_key=settings.model_signing_key)
    return path.name


def _start_cluster(settings: Settings, node_loss: bool, console: Console):
    """A local Ray cluster of this process's own: a head (2 CPUs), or a head and 2 worker nodes (1 CPU each)."""
    import ray
    from ray.cluster_utils import Cluster

    # Read by the nodes' processes when they start: no token on a local cluster, the ingress and its retry policy,
    # HAProxy's own listeners on free ports (fixed ports would collide with a running system's).
    os.environ["RAY_AUTH_MODE"] = "disabled"
    for name, value in ingress_environment(settings.serve_haproxy).items():
        os.environ.setdefault(name, value)  # an operator's own retry policy wins
    os.environ["RAY_SERVE_HAPROXY_METRICS_PORT"] = str(free_tcp_port())
    os.environ["RAY_SERVE_HAPROXY_STATS_PORT"] = str(free_tcp_port())
    os.environ.pop("RAY_ADDRESS", None)
    if ray.is_initialized():
        raise UserFacingError("bench chaos starts a Ray cluster of its own: run it from a fresh process")
    with console.status("starting a local Ray cluster …"):
        head = {"num_cpus": 1 if node_loss else 2, "object_store_memory": 150 * MB, "_system_config": FAST_NODE_DEATH}
        cluster = Cluster(initialize_head=True, head_node_args=head)
        workers = [cluster.add_node(num_cpus=1, object_store_memory=100 * MB) for _ in range(2 if node_loss else 0)]
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, namespace="autoins-bench-chaos", log_to_driver=False,
                 configure_logging=False)
    return cluster, workers


def _stop_cluster(cluster) -> None:
    """Down at once: the cluster dies with its nodes. Not `serve.shutdown()`, whose graceful path waited its full
    30 s here after a chaos run; HAProxy, in a process group of its own, would outlive the nodes, so it is
    stopped by pid."""
    import psutil
    import ray

    ingress = [p for p in psutil.Process().children(recursive=True) if _name(p) == "haproxy"]
    if ray.is_initialized():
        ray.shutdown()
    if cluster is not None:
        cluster.shutdown()
    for proc in ingress:
        try:
            proc.terminate()
        except psutil.Error:
            continue
    psutil.wait_procs(ingress, timeout=10)


def _name(proc) -> str:
    import psutil

    try:
        return proc.name()
    except psutil.Error:
        return ""


def _deploy(settings: Settings, console: Console) -> None:
    """The risk model and the API (reading the faulty run's database), behind the configured ingress."""
    from ray import serve

    from autoins.ingress import wait_until_answering
    from config.names import API_APP, RISK_APP
    from deployments.builder import API_ROUTE, absolute_paths, build_api_app, build_risk

    settings = absolute_paths(settings)
    with console.status("deploying the risk model and the API (2 replicas each) …"):
        serve.start(http_options={"host": settings.http_host, "port": settings.http_port})
        serve.run(build_risk(settings), name=RISK_APP, route_prefix=None)
        serve.run(build_api_app(settings), name=API_APP, route_prefix=API_ROUTE)
    problem = wait_until_answering(_base_url(settings))
    if problem is not None:
        raise UserFacingError(f"the API does not answer at {_base_url(settings)}: {problem}")


def _base_url(settings: Settings) -> str:
    return f"http://{settings.http_host}:{settings.http_port}"


# -- the faulty run ---------------------------------------------------------------------------------------------


@dataclass
class FaultyRun:
    faults: list[Fault]
    elapsed_s: float
    probes: dict
    status: dict


async def _faulty_run(settings: Settings, options: ChaosOptions, population: Population, plan: list[str],
                      now: datetime, cluster, workers: list, console: Console) -> FaultyRun:
    from deployments.api.auth import issue_token

    pipeline = start_pipeline(settings, prefix="chaos-")
    driver = population.truth_table()[0].driver_id
    prober = ApiProber(_base_url(settings), issue_token(settings, user_id=f"user-{driver}", role="driver",
                                                        driver_id=driver))
    producing = threading.Thread(target=preload, name="chaos-producer", daemon=True, kwargs={
        "settings": settings, "population": population, "events": options.events, "seed": options.seed,
        "now_ms": int(now.timestamp() * 1000), "console": console, "rate": options.rate,
        "label": f"producing at {options.rate:,.0f}/s"})
    rng = random.Random(options.seed)
    faults: list[Fault] = []
    started = time.monotonic()
    production_s = options.events / options.rate
    prober.start()
    producing.start()
    try:
        for i, kind in enumerate(plan):
            # evenly spaced inside the production window, each once the previous fault is over
            due = started + production_s * 0.85 * (i + 1) / (len(plan) + 1)
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            fault = await _inject(kind, pipeline, settings, rng, started, cluster, workers)
            await _recover(fault, pipeline, settings, options.events, options.recovery_timeout_s)
            fault.failed_requests, fault.failed_first_try = prober.failed_between(
                started + fault.at_s, started + fault.at_s + (fault.recovered_s or options.recovery_timeout_s) + 2)
            faults.append(fault)
            console.print(_fault_line(fault), highlight=False)
        await _wait_durable(settings, options.events, started + options.timeout_s)
        producing.join(timeout=30)
        await _wait_scored(settings, started + options.timeout_s)
        elapsed_s = time.monotonic() - started
    finally:
        prober.stop()
    from autoins.pipeline import pipeline_status

    pipeline.refresh()
    status = await pipeline_status(pipeline)
    await stop_pipeline(pipeline)
    return FaultyRun(faults, elapsed_s, prober.summary(), {"rewinds": status["rewinds"], "lag": status["lag"],
                                                             "dead_lettered": status["dead_lettered"]})


async def _inject(kind: str, pipeline, settings: Settings, rng: random.Random, started: float, cluster,
                  workers: list) -> Fault:
    at_s = time.monotonic() - started
    durable = await durable_messages(settings)
    if kind in PIPELINE_KINDS:
        index = rng.randrange(pipeline_size(pipeline, kind))
        name, pid, _node = await pipeline_actor_pid(pipeline, kind, index)
        kill(pid)
        return Fault(kind, name, pid, index=index, at_s=at_s, durable_at_kill=durable)
    if kind in PROCESS_TITLES:
        pids = titled_pids(PROCESS_TITLES[kind])
        if not pids:
            raise UserFacingError(f"no {PROCESS_TITLES[kind]} process to kill")
        pid = rng.choice(sorted(pids))
        kill(pid)
        return Fault(kind, PROCESS_TITLES[kind].removeprefix("ray::"), pid, peers=frozenset(pids), at_s=at_s,
                     durable_at_kill=durable)
    if kind == NODE_LOSS:
        by_node = Counter((await _placements(pipeline)).values())
        victim = max(workers, key=lambda w: by_node.get(w.node_id, 0))
        cluster.remove_node(victim, allow_graceful=False)
        return Fault(kind, victim.node_id, None, at_s=at_s, durable_at_kill=durable,
                     notes=[f"{by_node.get(victim.node_id, 0)} pipeline actors were on it"])
    raise ValueError(kind)


async def _recover(fault: Fault, pipeline, settings: Settings, events: int, timeout_s: float) -> None:
    """Fill in resumed_s and back_s (None when not within `timeout_s`)."""
    kind = fault.kind

    async def resumed() -> float | None:
        began = time.monotonic()
        while time.monotonic() - began < timeout_s:
            if await durable_messages(settings) > fault.durable_at_kill:
                return time.monotonic() - began
            await asyncio.sleep(0.1)
        return None

    if kind in PIPELINE_KINDS:
        async def probe() -> int | None:
            return (await pipeline_actor_pid(pipeline, kind, fault.index, timeout_s=2.0))[1]
    elif kind in PROCESS_TITLES:
        title = PROCESS_TITLES[kind]

        async def probe() -> int | None:
            """A replacement: as many processes as before the kill, one of them new, and Serve counting them all
            running again (only then does the ingress route to it)."""
            alive = titled_pids(title)
            new = alive - fault.peers
            if not new or len(alive) < len(fault.peers):
                return None
            return min(new) if await asyncio.to_thread(_serve_settled, kind, len(fault.peers)) else None
    else:
        async def probe() -> int | None:
            placements = await _placements(pipeline, attempts=1)
            moved = placements and all(node != fault.target for node in placements.values())
            return 1 if moved else None

    fault.drained = fault.durable_at_kill >= events
    if fault.drained:
        fault.notes.append("every reading was durable before the kill: nothing to resume")

        async def resumed() -> float | None:
            return None

    resumed_s, (back_s, new_pid) = await asyncio.gather(resumed(), wait_until_back(probe, fault.pid, timeout_s))
    fault.resumed_s, fault.back_s = resumed_s, back_s
    fault.new_pid = new_pid if kind != NODE_LOSS else None


def _serve_settled(kind: str, replicas: int) -> bool:
    """The controller answers and, for a replica kind, its deployment has `replicas` RUNNING replicas."""
    from ray import serve

    from config.names import API_APP, API_DEPLOYMENT, RISK_APP, RISK_DEPLOYMENT

    applications = serve.status().applications
    if kind == "controller":
        return True
    app, deployment = (API_APP, API_DEPLOYMENT) if kind == "api" else (RISK_APP, RISK_DEPLOYMENT)
    states = applications[app].deployments[deployment].replica_states
    return states.get("RUNNING", 0) >= replicas


async def _placements(pipeline, attempts: int = 20) -> dict[str, str]:
    """Pipeline actor name → node id (actors that do not answer within `attempts` tries are left out)."""
    out = {}
    for kind in PIPELINE_KINDS:
        for index in range(pipeline_size(pipeline, kind)):
            for _ in range(attempts):
                try:
                    name, _pid, node = await pipeline_actor_pid(pipeline, kind, index, timeout_s=2.0)
                    out[name] = node
                    break
                except Exception:
                    await asyncio.sleep(0.25)
    return out


def _fault_line(fault: Fault) -> str:
    def s(value: float | None) -> str:
        return "not within the timeout" if value is None else f"{value:.1f} s"

    what = (f"lost node {fault.target}" if fault.kind == NODE_LOSS
            else f"killed {fault.kind} {fault.target} (pid {fault.pid})")
    resumed = "nothing left to ingest" if fault.drained else f"ingest resumed after {s(fault.resumed_s)}"
    return (f"{what} at {fault.at_s:.1f} s: {resumed}, back after {s(fault.back_s)}; API requests failed: "
            f"{fault.failed_requests} after a retry, {fault.failed_first_try} on the first try")


async def _wait_durable(settings: Settings, events: int, deadline: float) -> None:
    while (durable := await durable_messages(settings)) < events:
        if time.monotonic() > deadline:
            raise UserFacingError(f"only {durable:,}/{events:,} readings durable within the timeout "
                                  "(raise --timeout, or look at the actors' logs)")
        await asyncio.sleep(0.25)


async def _wait_scored(settings: Settings, deadline: float, settle_s: float = 2.0) -> None:
    """Until every ended trip has its score, and the count held for `settle_s` (the last trip ends may still be
    on their way from persistence to the scorer)."""
    conn = await connect(settings, application_name="autoins-bench-chaos")
    try:
        stable_since, last = None, None
        while True:
            trips, scored = await scoring_progress(conn)
            now = time.monotonic()
            if trips == scored and (trips, scored) == last:
                if stable_since is not None and now - stable_since >= settle_s:
                    return
            else:
                stable_since = now
            last = (trips, scored)
            if now > deadline:
                raise UserFacingError(f"{scored:,} of {trips:,} trips scored within the timeout")
            await asyncio.sleep(0.25)
    finally:
        await conn.close()


# -- the fault-free run and the verdict -------------------------------------------------------------------------


@dataclass
class CleanRun:
    elapsed_s: float


async def _clean_run(settings: Settings, options: ChaosOptions, console: Console) -> CleanRun:
    started = time.monotonic()
    pipeline = start_pipeline(settings, prefix="clean-")
    try:
        with console.status("draining the same topic without faults …"):
            await _wait_durable(settings, options.events, started + options.timeout_s)
            await _wait_scored(settings, started + options.timeout_s)
    finally:
        await stop_pipeline(pipeline)
    return CleanRun(time.monotonic() - started)


async def _stored(settings: Settings) -> dict:
    conn = await connect(settings, application_name="autoins-bench-chaos")
    try:
        return {"counts": await stored_counts(conn), "digests": await log_digests(conn)}
    finally:
        await conn.close()


async def _differences(faulty: Settings, clean: Settings, names: list[str], shown: int = 3) -> dict:
    """For each table that differs: how many rows only one run has, and a few of them."""
    out = {}
    for name in names:
        rows = []
        for settings in (faulty, clean):
            conn = await connect(settings, application_name="autoins-bench-chaos")
            try:
                rows.append(await log_rows(conn, name))
            finally:
                await conn.close()
        only_faulty, only_clean = sorted(rows[0] - rows[1]), sorted(rows[1] - rows[0])
        out[name] = {"only_faulty": len(only_faulty), "only_clean": len(only_clean),
                     "only_faulty_rows": [_around_difference(r, only_clean) for r in only_faulty[:shown]],
                     "only_clean_rows": [_around_difference(r, only_faulty) for r in only_clean[:shown]]}
    return out


def _around_difference(row: str, others: list[str], context: int = 160) -> str:
    """`row`, or where it first differs from the other run's row with the same key (its first column)."""
    key = row.split(",", 1)[0]
    twin = next((o for o in others if o.split(",", 1)[0] == key), None)
    if twin is None:
        return row[: 2 * context]
    at = next((i for i, (a, b) in enumerate(zip(row, twin, strict=False)) if a != b), min(len(row), len(twin)))
    return f"{key} … {row[max(0, at - context // 2): at + context // 2]} …"


def _result(options: ChaosOptions, machine: dict, model_version: str, faulty: FaultyRun, clean: CleanRun,
            stored_faulty: dict, stored_clean: dict) -> dict:
    counts = stored_faulty["counts"]
    digests_f, digests_c = stored_faulty["digests"], stored_clean["digests"]
    equal = {name: digests_f[name] == digests_c[name] for name in digests_f}
    faults = [f.as_dict() for f in faulty.faults]
    recovered = [f.recovered_s for f in faulty.faults]
    result = {
        "events": options.events,
        "lost": options.events - counts["distinct_ids"],
        "duplicated": counts["rows"] - counts["distinct_ids"],
        "trips_equal": equal["trips"] and equal["trip_events"],
        "scores_equal": equal["risk_scores"] and equal["risk_events"] and equal["policies"],
        "domain_events_equal": equal["domain_events"],
        "faults": faults,
        "recovery_s_max": None if None in recovered or not recovered else round(max(recovered), 2),
        "resumed_s_max": _max_or_none([f.resumed_s for f in faulty.faults]),
        "api_requests": faulty.probes["sent"],
        "api_failed": faulty.probes["failed"],
        "api_failed_first_try": faulty.probes["failed_first_try"],
        "api_failures": faulty.probes["failures"],
        "api_first_try_failures": faulty.probes["first_try_failures"],
        "compared": {name: {"faulty_rows": digests_f[name]["rows"], "clean_rows": digests_c[name]["rows"],
                            "equal": equal[name]} for name in digests_f},
        "rewinds": faulty.status["rewinds"],
        "dead_lettered": faulty.status["dead_lettered"],
        "faulty_elapsed_s": round(faulty.elapsed_s, 1),
        "clean_elapsed_s": round(clean.elapsed_s, 1),
        "rate": options.rate,
        "drivers": options.drivers,
        "node_loss": options.node_loss,
        "model_version": model_version,
        "shape": {k: SHAPE[k] for k in ("kafka_num_consumers", "num_shards", "num_persistence", "api_num_replicas",
                                        "consumer_batch_size")},
        "machine": machine,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": options.command,
    }
    result["verified"] = (result["lost"] == 0 and result["duplicated"] == 0 and all(equal.values())
                          and result["recovery_s_max"] is not None)
    return result


def _max_or_none(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(max(known), 2) if known and len(known) == len(values) else None
