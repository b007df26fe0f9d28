"""`autoins serve`: start Ray (or join RAY_ADDRESS), run the ingest pipeline and the Serve apps (API, WebSocket
feeds, risk model), show the pipeline live.

Runs until interrupted, then removes the Serve apps, stops the consumers cleanly (in-flight batches finish and
commit) and the other actors. The live view polls the actors and PostgreSQL once a second.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

import typer
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from autoins.cli_support import console, settings_from_env, user_errors
from autoins.errors import UserFacingError
from autoins.ingress import ingress_environment
from autoins.ray_head import RayHead
from config.settings import Settings


def init_ray(settings: Settings, include_dashboard: bool = True) -> str | None:
    """Join `RAY_ADDRESS` when set, else start a local Ray; returns the dashboard URL if any."""
    import ray

    if ray.is_initialized():
        return None
    try:
        if settings.ray_address:
            context = ray.init(address=settings.ray_address, namespace=settings.ray_namespace, configure_logging=False)
        else:
            context = ray.init(
                namespace=settings.ray_namespace,
                include_dashboard=include_dashboard,
                configure_logging=False,
                log_to_driver=False,
            )
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise UserFacingError(f"cannot start or join Ray ({settings.ray_address or 'local'}): {error}") from None
    url = getattr(context, "dashboard_url", None)
    return f"http://{url}" if url else None


async def live_counters(settings: Settings) -> dict:
    from storage.postgres.pipeline_queries import pipeline_counters
    from storage.postgres.pool import create_pool

    pool = await create_pool(settings, application_name="autoins-serve", min_size=1, max_size=1)
    try:
        return await pipeline_counters(pool)
    finally:
        await pool.close()


def status_table(status: dict, counters: dict, rate_per_s: float, elapsed_s: float) -> Table:
    table = Table(title=f"autoins pipeline — {elapsed_s:,.0f} s", show_header=True)
    for column in ("events/s", "durable", "consumer lag", "DLQ", "trips", "harsh events", "rewinds", "actors"):
        table.add_column(column, justify="right")
    restarting = status.get("restarting", 0)
    table.add_row(
        f"{max(rate_per_s, 0.0):,.0f}",
        f"{status['durable']:,}",
        f"{status['lag']:,}",
        f"{status['dead_lettered']:,}",
        f"{counters.get('trips', 0):,}" if counters else "?",
        f"{counters.get('harsh_events', 0):,}" if counters else "?",
        f"{status['rewinds']}",
        f"{restarting} restarting" if restarting else "all up",
    )
    return table


async def watch(settings: Settings, pipeline, until: Callable[[dict], bool] | None = None, stop_flag=None) -> dict:
    """Refresh the live table every second until `until(status)` or `stop_flag.is_set()`."""
    from autoins.pipeline import pipeline_status

    started = time.monotonic()
    last_durable, last_t = 0, started
    status: dict = {}
    with Live(console=console, refresh_per_second=2) as live:
        while not (stop_flag is not None and stop_flag.is_set()):
            status = await pipeline_status(pipeline)  # never raises: a down actor counts as restarting
            try:
                counters = await live_counters(settings)
            except Exception:  # PostgreSQL away: the view goes on without its counters
                counters = {}
            now = time.monotonic()
            rate = (status["durable"] - last_durable) / max(1e-6, now - last_t)
            last_durable, last_t = status["durable"], now
            live.update(status_table(status, counters, rate, now - started))
            if until is not None and until(status):
                break
            await asyncio.sleep(1.0)
    return status


@dataclass
class System:
    """The Ray cluster this CLI joined: `head` is our own local head (None when joining RAY_ADDRESS); `started`
    says this process started it (so Ctrl-C of this process stops it)."""

    head: RayHead | None
    started: bool

    @property
    def dashboard(self) -> str | None:
        return self.head.dashboard_url if self.head else None


def join_system(settings: Settings, *, start: bool) -> System:
    """Join RAY_ADDRESS, or this data dir's running local head, or (with `start`) start one: a separate process
    tree, so the pipeline and the apps outlive this CLI (a SIGKILL of it included)."""
    import ray

    from autoins.ray_head import running_head, start_head, wait_for_head

    if settings.ray_address:
        _ray_init(settings.ray_address, settings)
        return System(None, started=False)
    # A local head for development: no token to hand around. Serve reads the ingress choice when it starts.
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    for name, value in ingress_environment(settings.serve_haproxy).items():
        os.environ.setdefault(name, value)
    head, started = running_head(settings), False
    if head is None:
        if not start:
            raise UserFacingError("nothing is running here: no Ray head for this data dir (`autoins serve` or "
                                  "`autoins deploy` starts one; set RAY_ADDRESS to reach a cluster)")
        refuse_taken_ports(settings)
        console.print("starting a local Ray head …")
        head, started = start_head(settings, dict(os.environ)), True
        wait_for_head(head)
    if not ray.is_initialized():
        _ray_init(head.address, settings)
    return System(head, started)


def _ray_init(address: str, settings: Settings) -> None:
    import ray

    try:
        ray.init(address=address, namespace=settings.ray_namespace, configure_logging=False, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise UserFacingError(f"cannot join Ray at {address}: {error}") from None


def launch_pipeline(settings: Settings):
    """What `serve`, `deploy` and `demo` share: refuse an unmigrated database, join or start Ray, start (or join)
    the supervised pipeline. Returns the pipeline and the System."""
    from autoins.db_commands import require_current_schema
    from autoins.pipeline import start_pipeline

    require_current_schema(settings)
    system = join_system(settings, start=True)
    return start_pipeline(settings), system


async def stop_system(settings: Settings, pipeline, system: System) -> None:
    """Remove the apps, stop the pipeline (consumers finish what is in flight), and stop our own head."""
    from autoins.pipeline import stop_pipeline
    from autoins.ray_head import stop_head

    await asyncio.to_thread(remove_apps)
    if pipeline is not None:
        await stop_pipeline(pipeline)
    if system.head is None:  # a cluster we joined stays up, without our Serve (its ingress would hold the port)
        await asyncio.to_thread(shutdown_serve)
    if system.head is not None:
        import ray

        ray.shutdown()
        stopped = await asyncio.to_thread(stop_head, settings, system.head)
        console.print(f"stopped the local Ray head ({stopped} processes)")


def refuse_taken_ports(settings: Settings) -> None:
    """Before starting a local Serve: our ingress ports must be free (a stale HAProxy keeps them)."""
    from autoins.ingress import ingress_ports, listeners

    taken = listeners(ingress_ports(settings.http_port, settings.serve_haproxy))
    if taken:
        hint = " (a stale ingress from an earlier run: stop it with `kill <pid>`)" if any(
            "haproxy" in t.name for t in taken) else ""
        raise UserFacingError("; ".join(t.describe() for t in taken) + hint)


def deploy_apps(settings: Settings) -> dict[str, str]:
    """Deploy the risk model, API and WebSocket apps (deployments/builder.py); blocks until they run, then
    until the API answers through the ingress."""
    from ray.serve.exceptions import RayServeException

    from autoins.ingress import ingress_ports, listeners, wait_until_answering
    from deployments.builder import deploy_all

    console.print(
        f"deploying the Serve apps: api ({settings.api_num_replicas} replicas), ws ({settings.ws_num_replicas}), risk …"
    )
    try:
        urls = deploy_all(settings)
    except (RayServeException, RuntimeError, ValueError) as error:
        raise UserFacingError(f"cannot deploy the Serve apps: {error}") from None
    problem = wait_until_answering(urls["api"])
    if problem is not None:
        taken = listeners(ingress_ports(settings.http_port, settings.serve_haproxy))
        holders = "; ".join(t.describe() for t in taken) or "no process listens on the port"
        raise UserFacingError(f"the API does not answer at {urls['api']}/health/live ({problem}); {holders}")
    return urls


def remove_apps() -> None:
    from deployments.builder import delete_all

    try:
        delete_all()
    except Exception as error:  # shutting down anyway: report, never mask the pipeline's clean stop
        console.print(f"[yellow]removing the Serve apps failed:[/yellow] {escape(str(error))}")


def shutdown_serve() -> None:
    """Serve's controller, proxies and HAProxy ingress off the cluster (the apps are already removed)."""
    from ray import serve

    try:
        serve.shutdown()
    except Exception as error:  # shutting down anyway: report, never mask the pipeline's clean stop
        console.print(f"[yellow]shutting Serve down failed:[/yellow] {escape(str(error))}")


def print_addresses(urls: dict[str, str], dashboard: str | None) -> None:
    console.print(f"Console:    {urls['console']}   (open it in a browser; nothing is opened for you)")
    console.print(f"API:        {urls['api']}   (OpenAPI docs: {urls['docs']})")
    console.print(f"WebSocket:  {urls['websocket']}   subprotocols autoins.v1, bearer.<jwt>   "
                  f"(fleet: {urls['websocket'].rsplit('/', 2)[0]}/fleet)")
    console.print(f"Metrics:    {urls['metrics']}   health: {urls['api']}/health/ready")
    if dashboard:
        console.print(f"Ray dashboard: {dashboard}")


@user_errors
def serve_command() -> None:
    """Start (or join) the system and watch it live; Ctrl-C stops what this process started."""
    settings = settings_from_env()
    pipeline, system = launch_pipeline(settings)
    console.print(
        f"pipeline: {settings.kafka_num_consumers} consumer(s), {settings.num_shards} shard(s), "
        f"{settings.num_persistence} persistence actor(s) on topic {settings.kafka_topic_events}, supervised"
    )
    interrupted = False
    try:
        print_addresses(deploy_apps(settings), system.dashboard)
        if system.started or settings.ray_address:
            console.print("Ctrl-C stops the consumers cleanly (in-flight batches finish and commit).")
        else:
            console.print("joined a running system: Ctrl-C leaves it running (`autoins stop` stops it).")
    except KeyboardInterrupt:  # Ctrl-C while deploying: stop as cleanly as at any other time
        interrupted = True

    async def main() -> None:
        stop = asyncio.Event()
        if interrupted:
            stop.set()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await watch(settings, pipeline, stop_flag=stop)
        finally:
            if system.started or settings.ray_address:
                console.print("stopping the pipeline …")
                await stop_system(settings, pipeline, system)

    asyncio.run(main())
    raise typer.Exit(0)


@user_errors
def deploy_command() -> None:
    """Start (or join) the system and return: the pipeline and the apps keep running without this process."""
    settings = settings_from_env()
    _pipeline, system = launch_pipeline(settings)
    print_addresses(deploy_apps(settings), system.dashboard)
    console.print("running in the background: `autoins status` shows it, `autoins stop` stops it.")
    raise typer.Exit(0)


@user_errors
def status_command() -> None:
    """The supervised pipeline's health, every actor's state and the Serve apps; exit 1 unless all is well."""
    from autoins.pipeline import join_pipeline

    settings = settings_from_env()
    join_system(settings, start=False)
    pipeline = join_pipeline(settings)
    if pipeline is None:
        raise UserFacingError("no pipeline is running in this Ray namespace")
    import ray
    from ray.exceptions import RayError

    try:
        status = ray.get(pipeline.supervisor.status.remote(), timeout=30)
    except RayError as error:  # its node was lost, or it is restarting: Ray brings it back
        raise UserFacingError(f"the pipeline supervisor does not answer ({type(error).__name__}): it is being "
                              "restarted (a lost node takes ~30 s to detect); try again shortly") from None
    apps = serve_apps()
    console.print(status_view(status, apps))
    healthy = status["health"]["status"] == "ok" and all(state == "RUNNING" for state in apps.values())
    raise typer.Exit(0 if healthy else 1)


@user_errors
def stop_command() -> None:
    """Stop the system `serve`/`deploy` started here (or the pipeline and apps on RAY_ADDRESS)."""
    from autoins.pipeline import join_pipeline

    settings = settings_from_env()
    system = join_system(settings, start=False)
    pipeline = join_pipeline(settings)
    asyncio.run(stop_system(settings, pipeline, system))
    console.print("stopped")
    raise typer.Exit(0)


def serve_apps() -> dict[str, str]:
    """App name → status, or {} when Serve is not running."""
    try:
        from ray import serve

        applications = serve.status().applications
        return {name: str(getattr(app.status, "value", app.status)) for name, app in applications.items()}
    except Exception:
        return {}


def status_view(status: dict, apps: dict[str, str]) -> Table:
    """One row per actor (node: the first 8 hex digits of its Ray node id, as `ray status` lists them)."""
    health = status["health"]
    table = Table(title=f"autoins — pipeline {health['status']}", show_header=True)
    for column in ("actor", "role", "state", "node", "pid", "restarts", "durable", "lag", "last error"):
        table.add_column(column)
    restarts = health.get("restarts", {})
    for name, actor in status["actors"].items():
        table.add_row(
            escape(name), actor["role"], actor["state"], str(actor.get("node", ""))[:8], str(actor.get("pid", "")),
            str(restarts.get(name, 0)),
            _count(actor.get("durable", actor.get("readings"))), _count(actor.get("lag_total")),
            escape(str(actor.get("last_error") or ""))[:80],
        )
    for name, state in apps.items():
        table.add_row(escape(name), "serve app", escape(state), "", "", "", "", "", "")
    return table


def _count(value) -> str:
    return "" if value is None else f"{value:,}"
