"""`autoins demo`: the pipeline on Ray plus a simulated fleet, watched live until it has drained, with the
API, WebSocket feeds and risk model served next to it.

`make demo` runs it after `stack up`, `migrate` and `topics`. Before the fleet starts it seeds the demo
logins (`autoins seed`: driver0001 / password0001 …, admin / admin-password), trains the default model
when `models_dir` holds none (`autoins train`: seconds, its features ship with autoins), and deploys the
Serve apps. The simulator runs as its own process (`autoins simulate`), exactly as an operator would run
it, while this process hosts the pipeline and the live view; when the simulator is done and the consumers'
lag is 0 it prints where to look next (the API, /docs, the WebSocket, the dashboard and a login to try).
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from typing import Annotated

import typer

from autoins.cli_support import console, run, settings_from_env, user_errors
from autoins.errors import UserFacingError
from autoins.serve import deploy_apps, launch_pipeline, live_counters, print_addresses, stop_system, watch
from config.settings import Settings


@user_errors
def demo_command(
    drivers: Annotated[int, typer.Option("--drivers", min=1, help="Simulated drivers.")] = 200,
    duration: Annotated[str, typer.Option("--duration", help="Simulated span (30m, 2h, 1d).")] = "1d",
    seed: Annotated[int, typer.Option("--seed", min=0)] = 7,
    keep_running: Annotated[bool, typer.Option(
        "--keep-running/--exit-when-drained",
        help="After the fleet drained, keep serving the API and the pipeline until Ctrl-C (default), or exit.",
    )] = True,
) -> None:
    """Run the pipeline and the API, feed a simulated fleet, show events/s, lag, trips and harsh events live."""
    settings = settings_from_env()
    seed_logins(settings, drivers, seed)
    ensure_model(settings)
    pipeline, system = launch_pipeline(settings)
    dashboard = system.dashboard
    urls = deploy_apps(settings)
    console.print(f"Console: {urls['console']}  (driver0001 / password0001, admin / admin-password)")
    console.print(
        f"pipeline up: {settings.kafka_num_consumers} consumer(s), {settings.num_shards} shards, "
        f"{settings.num_persistence} persistence actors; simulating {drivers} drivers over {duration}"
    )
    simulator = subprocess.Popen(
        [sys.executable, "-m", "autoins.cli", "simulate", "--drivers", str(drivers), "--duration", duration,
         "--seed", str(seed)],
        stdout=subprocess.DEVNULL,
    )

    quiet_checks = []

    def drained(status: dict) -> bool:
        """Simulator finished and lag 0 on two consecutive refreshes (watermarks come from fetches)."""
        quiet = simulator.poll() is not None and status["lag"] == 0
        quiet_checks.append(quiet)
        return quiet_checks[-2:] == [True, True]

    async def main() -> int:
        try:
            status = await watch(settings, pipeline, until=drained)
            if simulator.returncode:
                console.print(f"[red]the simulator failed (exit {simulator.returncode})[/red]")
                return 1
            await report(settings, status, urls, dashboard)
            if keep_running:
                console.print("serving the API and the pipeline; Ctrl-C stops them.")
                await until_interrupted()
            return 0
        finally:
            if simulator.poll() is None:
                simulator.terminate()
            console.print("stopping …")
            if system.started or settings.ray_address:
                await stop_system(settings, pipeline, system)

    try:
        code = asyncio.run(main())
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    raise typer.Exit(code)


async def report(settings: Settings, status: dict, urls: dict[str, str], dashboard: str | None) -> None:
    counters = await live_counters(settings)
    console.print(
        f"done: {status['durable']:,} readings durable, {status['dead_lettered']:,} dead-lettered, "
        f"{counters['trips']:,} trips and {counters['harsh_events']:,} harsh/speeding events stored in total"
    )
    console.print(
        f"PostgreSQL: {settings.database_url}   Redis: {settings.redis_url}   Kafka: {settings.kafka_bootstrap_servers}"
    )
    print_addresses(urls, dashboard)
    console.print('Log in: POST /api/v1/auth/login {"username": "driver0001", "password": "password0001"} '
                  "(admin: admin / admin-password), or try it at /docs")
    console.print("Feed it more with `autoins simulate --drivers N --duration 2h`.")


async def until_interrupted() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def seed_logins(settings: Settings, drivers: int, seed: int) -> None:
    """The demo drivers' logins and policies (idempotent), with the same seed as the simulated fleet."""
    from autoins.seed import seed_demo

    result = run(seed_demo(settings, min(drivers, 9_999), seed=seed))
    console.print(f"demo logins: {result.new_users} new (driver0001 / password0001 …, admin / admin-password)")


def ensure_model(settings: Settings) -> None:
    """Train the default model with `autoins train` unless models_dir holds one that verifies with
    MODEL_SIGNING_KEY (an older unsigned artifact, or one signed with another key, would not load): its simulated
    features ship with autoins (autoins/data/training-cache), so this is a fit of a few seconds."""
    from autoins.train import absolute_models_dir
    from domain.risk_model import ArtifactError
    from storage.files.model_artifacts import verify_artifact

    models_dir = absolute_models_dir(settings)
    try:
        verify_artifact(models_dir, settings.model_version, signing_key=settings.model_signing_key)
        return
    except ArtifactError as error:
        console.print(f"{error}: training the default model (`autoins train`) …", highlight=False, markup=False)
    done = subprocess.run([sys.executable, "-m", "autoins.cli", "train"], check=False)
    if done.returncode:
        raise UserFacingError(f"training the demo model failed (exit {done.returncode}); run `autoins train`")
