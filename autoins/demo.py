"""`autoins demo`: the pipeline on Ray plus a simulated fleet, watched live until it has drained.

`make demo` runs it after `stack up`, `migrate` and `topics`. The simulator runs as its own process
(`autoins simulate`), exactly as an operator would run it, while this process hosts the pipeline and
the live view; when the simulator is done and the consumers' lag is 0 it prints where to look next.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Annotated

import typer

from autoins.cli_support import console, settings_from_env, user_errors
from autoins.serve import launch_pipeline, live_counters, watch


@user_errors
def demo_command(
    drivers: Annotated[int, typer.Option("--drivers", min=1, help="Simulated drivers.")] = 200,
    duration: Annotated[str, typer.Option("--duration", help="Simulated span (30m, 2h, 1d).")] = "1d",
    seed: Annotated[int, typer.Option("--seed", min=0)] = 7,
    keep_running: Annotated[bool, typer.Option("--keep-running", help="Stay up after draining (Ctrl-C).")] = False,
) -> None:
    """Run the pipeline, feed it a simulated fleet, show events/s, lag, trips and harsh events live."""
    from autoins.pipeline import stop_pipeline

    settings = settings_from_env()
    pipeline, dashboard = launch_pipeline(settings)
    console.print(
        f"pipeline up: {settings.kafka_num_consumers} consumer(s), {settings.num_shards} shards, "
        f"{settings.num_persistence} persistence actors; simulating {drivers} drivers over {duration}"
    )
    simulator = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "autoins.cli",
            "simulate",
            "--drivers",
            str(drivers),
            "--duration",
            duration,
            "--seed",
            str(seed),
        ],
        stdout=subprocess.DEVNULL,
    )

    quiet_checks = []

    def drained(status: dict) -> bool:
        """Simulator finished and lag 0 on two consecutive refreshes (watermarks come from fetches)."""
        quiet = simulator.poll() is not None and status["lag"] == 0 and not keep_running
        quiet_checks.append(quiet)
        return quiet_checks[-2:] == [True, True]

    async def main() -> dict:
        try:
            return await watch(settings, pipeline, until=drained)
        finally:
            if simulator.poll() is None:
                simulator.terminate()
            await stop_pipeline(pipeline)

    try:
        status = asyncio.run(main())
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    if simulator.returncode:
        console.print(f"[red]the simulator failed (exit {simulator.returncode})[/red]")
        raise typer.Exit(1)
    counters = asyncio.run(live_counters(settings))
    console.print(
        f"done: {status['durable']:,} readings durable, {status['dead_lettered']:,} dead-lettered, "
        f"{counters['trips']:,} trips and {counters['harsh_events']:,} harsh/speeding events stored in total"
    )
    console.print(
        f"PostgreSQL: {settings.database_url}   Redis: {settings.redis_url}   Kafka: {settings.kafka_bootstrap_servers}"
    )
    if dashboard:
        console.print(f"Ray dashboard (while a pipeline runs): {dashboard}")
    console.print("Keep it running with `autoins serve`, feed it with `autoins simulate --drivers N --duration 2h`.")
