"""`autoins bench …`: measured runs on scratch resources, reported as JSON, a table and BENCHMARKS.md."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from autoins.cli_support import console, err_console, fail, settings_from_env, user_errors
from autoins.errors import UserFacingError
from config.settings import PROJECT_ROOT

bench_app = typer.Typer(no_args_is_help=True, add_completion=False,
                        help="Benchmarks on scratch databases and topics (docs/BENCHMARKING.md).")

_SERVICE_CHOICES = ("private", "configured")


def _positive(name: str, value: int | None) -> None:
    if value is not None and value <= 0:
        raise UserFacingError(f"{name} must be a positive number, got {value}")


@contextlib.contextmanager
def _stdout_to_stderr(active: bool):
    """File descriptor 1 points at stderr meanwhile (what threads and C code print too): `--json` keeps stdout for
    its one line."""
    if not active:
        yield
        return
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _report(result: dict, name: str, output: Path | None, as_json: bool, out, markdown: str, begin: str, end: str,
            json_line, render_table) -> None:
    """What `api`, `ml` and the steady state do with a result: its BENCHMARKS.md section (unless `output` is
    None), then one JSON line on stdout or the table."""
    from autoins.bench.report import write_marked_section

    if output is not None:
        how = write_marked_section(output, markdown, begin, end)
        out.print(f"{output}: {name} section {how}", highlight=False)
    if as_json:
        sys.stdout.write(json.dumps(json_line(result)) + "\n")
        sys.stdout.flush()
    else:
        render_table(result, console)


@bench_app.command("ingest")
@user_errors
def ingest_command(
    events: Annotated[int | None, typer.Option("--events", help="Drain: readings to preload and drain (N).")] = None,
    rate: Annotated[float | None, typer.Option("--rate", help="Steady state: readings/s to produce (default 10000).")
                    ] = None,
    duration: Annotated[float | None, typer.Option("--duration", help="Steady state: seconds to produce (default 120).")
                        ] = None,
    probes: Annotated[int, typer.Option("--probes", help="Steady state: probe drivers with a WebSocket each.")] = 5,
    warmup: Annotated[float, typer.Option("--warmup", help="Steady state: seconds produced before the measured "
                                                           "window.")] = 5.0,
    drivers: Annotated[int, typer.Option("--drivers", help="Simulated drivers.")] = 2_000,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON line instead of tables.")] = False,
    consumers: Annotated[int | None, typer.Option("--consumers", help="Consumer actors (default: settings).")] = None,
    shards: Annotated[int | None, typer.Option("--shards", help="Shard actors (default: settings).")] = None,
    persistence: Annotated[int | None, typer.Option("--persistence", help="Persistence actors (default: settings).")
                           ] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", help="Readings per batch (default: settings).")
                          ] = None,
    partitions: Annotated[int | None, typer.Option("--partitions", help="Topic partitions (default: settings).")
                          ] = None,
    output: Annotated[Path, typer.Option("--output", help="Markdown file to write the run's section into.")
                      ] = PROJECT_ROOT / "BENCHMARKS.md",
    write: Annotated[bool, typer.Option("--write/--no-write", help="Write the section and the PNG plot.")] = True,
    raw: Annotated[bool, typer.Option("--raw/--no-raw", help="Also measure the raw limit (one plain process).")
                   ] = True,
    broker: Annotated[str, typer.Option("--broker", help="private (a tansu of its own) or configured.")
                      ] = "private",
    redis: Annotated[str, typer.Option("--redis", help="private (a redis-server of its own) or configured.")
                     ] = "private",
    seed: Annotated[int, typer.Option("--seed", help="Simulator seed.")] = 7,
    timeout: Annotated[float | None, typer.Option("--timeout", help="Seconds allowed per drain (default 120 + N/2000).")
                       ] = None,
) -> None:
    """Drain (`--events N`): preload N simulated readings, drain them through the Ray pipeline and through one
    plain process (the raw limit), verify, report events/s, latency, lag, memory and where time went. Steady
    state (`--rate R --duration S`, the default): produce R readings/s for S seconds while the pipeline
    consumes, report consumer lag and event → WebSocket delay against the goals."""
    from autoins.bench.ingest import IngestOptions, run_ingest_benchmark
    from autoins.bench.plot import throughput_png
    from autoins.bench.report import json_line, render_table, section_markdown, write_section

    if events is not None and (rate is not None or duration is not None):
        raise UserFacingError("--events (a drain) and --rate/--duration (steady state) are two modes: give one")
    _positive("--events", events)
    for name, value in (("--drivers", drivers), ("--consumers", consumers), ("--shards", shards),
                        ("--persistence", persistence), ("--batch-size", batch_size), ("--partitions", partitions)):
        _positive(name, value)
    for name, value in (("--broker", broker), ("--redis", redis)):
        if value not in _SERVICE_CHOICES:
            raise UserFacingError(f"{name} must be one of {', '.join(_SERVICE_CHOICES)}, got {value!r}")
    if events is None:
        _steady(rate, duration, probes, warmup, drivers, as_json, consumers, shards, persistence, batch_size,
                partitions, output if write else None, broker, redis, seed, timeout)
        return
    settings = settings_from_env()
    options = IngestOptions(
        events=events, drivers=drivers, seed=seed, consumers=consumers, shards=shards, persistence=persistence,
        batch_size=batch_size, partitions=partitions, private_broker=broker == "private",
        private_redis=redis == "private", raw=raw, timeout_s=timeout,
        command="autoins " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
    )
    out = err_console if as_json else console
    outcome = run_ingest_benchmark(settings, options, out)
    result = outcome.result
    if write:
        png = output.parent / "docs" / "bench" / f"ingest-{events}.png"
        raw_run = result.get("raw") or {}
        throughput_png(png, f"autoins bench ingest: {events:,} readings, {drivers:,} drivers ({result['date']})",
                       outcome.pipeline_timeline, result["events_per_s"], outcome.raw_timeline,
                       raw_run.get("events_per_s"))
        how = write_section(output, section_markdown(result, png, output), events)
        out.print(f"{output}: section for N={events:,} {how}; plot {png}", highlight=False)
    if as_json:
        sys.stdout.write(json.dumps(json_line(result)) + "\n")
        sys.stdout.flush()
    else:
        render_table(result, console)
    if not result["verified"]:
        raise fail(f"verification failed: {result['rows_stored']:,} rows, {result['distinct_event_ids']:,} distinct "
                   f"event ids, {result['durable_messages']:,} covered by offsets, final lag {result['final_lag']} "
                   f"(expected {events:,}, {events:,}, {events:,}, 0)")


def _steady(rate: float | None, duration: float | None, probes: int, warmup: float, drivers: int, as_json: bool,
            consumers: int | None, shards: int | None, persistence: int | None, batch_size: int | None,
            partitions: int | None, output: Path | None, broker: str, redis: str, seed: int,
            timeout: float | None) -> None:
    """`bench ingest --rate R --duration S`: docs/BENCHMARKING.md, "Steady state"."""
    from autoins.bench.steady import SteadyOptions, run_steady_benchmark
    from autoins.bench.steady_report import json_line, markers, render_table, section_markdown

    rate = 10_000.0 if rate is None else rate
    duration = 120.0 if duration is None else duration
    if rate <= 0 or duration <= 0 or probes < 0 or warmup < 0:
        raise UserFacingError(f"--rate and --duration must be positive, --probes and --warmup ≥ 0; got {rate:g}, "
                              f"{duration:g}, {probes}, {warmup:g}")
    options = SteadyOptions(
        rate=rate, duration_s=duration, warmup_s=warmup, drivers=drivers, probes=probes, seed=seed,
        consumers=consumers, shards=shards, persistence=persistence, batch_size=batch_size, partitions=partitions,
        private_broker=broker == "private",
        private_redis=redis == "private", timeout_s=timeout or 120.0,
        command="autoins " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
    )
    out = err_console if as_json else console
    result = run_steady_benchmark(settings_from_env(), options, out)
    _report(result, "steady-state", output, as_json, out, section_markdown(result), *markers(rate), json_line,
            render_table)
    if not result["verified"]:
        raise fail(f"verification failed: {result['rows_stored']:,} rows, {result['distinct_event_ids']:,} distinct "
                   f"event ids, {result['durable_messages']:,} covered by offsets, final lag {result['final_lag']} "
                   f"(expected {result['readings'] + result['probes_sent']:,} each, lag 0)")


@bench_app.command("api")
@user_errors
def api_command(
    users: Annotated[int, typer.Option("--users", help="Concurrent locust users (the plan's user).")] = 100,
    duration: Annotated[int, typer.Option("--duration", help="Seconds of the plan-shaped phase.")] = 60,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON line instead of tables.")] = False,
    throughput_users: Annotated[int, typer.Option("--throughput-users",
                                                  help="Users of the no-think-time phase (0 skips it).")] = 32,
    throughput_duration: Annotated[int, typer.Option("--throughput-duration", help="Seconds of that phase.")] = 20,
    url: Annotated[str | None, typer.Option("--url", help="Load a running system instead of building one.")] = None,
    drivers: Annotated[int, typer.Option("--drivers", help="Seeded drivers (own world only).")] = 100,
    output: Annotated[Path, typer.Option("--output", help="Markdown file to write the run's section into.")
                      ] = PROJECT_ROOT / "BENCHMARKS.md",
    write: Annotated[bool, typer.Option("--write/--no-write", help="Write the BENCHMARKS.md section.")] = True,
) -> None:
    """The plan's locust mix (login, /drivers/me, /risk/me/score, trips page) headless, per-endpoint
    p50/p95/p99 and req/s next to a no-op Serve endpoint in the same run, cache hit rate, then req/s with no
    think time."""
    from autoins.bench.api import ApiBenchOptions, run_api_benchmark
    from autoins.bench.api_report import BEGIN, END, json_line, render_table, section_markdown

    for name, value in (("--users", users), ("--duration", duration), ("--drivers", drivers)):
        _positive(name, value)
    if throughput_users < 0 or throughput_duration <= 0:
        raise UserFacingError("--throughput-users must be ≥ 0 and --throughput-duration > 0")
    settings = settings_from_env()
    options = ApiBenchOptions(users=users, duration_s=duration, throughput_users=throughput_users,
                              throughput_s=throughput_duration, url=url, drivers=drivers,
                              command="autoins " + " ".join(shlex.quote(a) for a in sys.argv[1:]))
    out = err_console if as_json else console
    result = run_api_benchmark(settings, options, out)
    _report(result, "api", output if write else None, as_json, out, section_markdown(result), BEGIN, END,
            json_line, render_table)
    if result["errors"]:
        raise fail(f"{result['errors']} request(s) failed")


@bench_app.command("ml")
@user_errors
def ml_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON line instead of a table.")] = False,
    requests: Annotated[int, typer.Option("--requests", help="Sequential single (and cached) requests.")] = 500,
    reps: Annotated[int, typer.Option("--reps", help="Repetitions of the batches of 100.")] = 20,
    output: Annotated[Path, typer.Option("--output", help="Markdown file to write the run's section into.")
                      ] = PROJECT_ROOT / "BENCHMARKS.md",
    write: Annotated[bool, typer.Option("--write/--no-write", help="Write the BENCHMARKS.md section.")] = True,
) -> None:
    """RiskModel latency through a Serve handle: single, a batch of 100 (assess_many), 100 concurrent
    singles, cached."""
    from autoins.bench.ml import BEGIN, END, json_line, render_table, run_ml_benchmark, section_markdown

    for name, value in (("--requests", requests), ("--reps", reps)):
        _positive(name, value)
    settings = settings_from_env()
    out = err_console if as_json else console
    result = run_ml_benchmark(settings, singles=requests, reps=reps, out=out,
                              command="autoins " + " ".join(shlex.quote(a) for a in sys.argv[1:]))
    _report(result, "ml", output if write else None, as_json, out, section_markdown(result), BEGIN, END,
            json_line, render_table)


@bench_app.command("chaos")
@user_errors
def chaos_command(
    events: Annotated[int, typer.Option("--events", help="Readings of the fixed fleet.")] = 60_000,
    drivers: Annotated[int, typer.Option("--drivers", help="Simulated drivers.")] = 200,
    rate: Annotated[float, typer.Option("--rate", help="Readings/s produced during the faulty run.")] = 2_000.0,
    kills: Annotated[int, typer.Option("--kills", help="Processes to SIGKILL, drawn at random (seeded).")] = 3,
    kinds: Annotated[str | None, typer.Option(
        "--kinds", help="Comma-separated kinds to draw from (default: all): consumer, shard, persistence, scorer, "
                        "supervisor, api, risk, controller.")] = None,
    each: Annotated[bool, typer.Option("--each", help="Kill each of --kinds once, in order, instead of --kills "
                                                      "random ones.")] = False,
    node_loss: Annotated[bool, typer.Option("--node-loss", help="Also remove a worker node mid-stream (the "
                                                                "cluster gets a head and 2 worker nodes).")] = False,
    seed: Annotated[int, typer.Option("--seed", help="Fleet and fault plan seed.")] = 7,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds allowed for each run.")] = 300.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON line instead of tables.")] = False,
    output: Annotated[Path, typer.Option("--output", help="Markdown file to write the run's section into.")
                      ] = PROJECT_ROOT / "BENCHMARKS.md",
    write: Annotated[bool, typer.Option("--write/--no-write", help="Write the BENCHMARKS.md section.")] = True,
) -> None:
    """A fixed fleet through the whole system while random processes are SIGKILLed (and with --node-loss a worker
    node is lost), compared with a fault-free run in the same command: lost, duplicated, trips and scores equal,
    recovery per fault, failed API requests."""
    from autoins.bench.chaos import ChaosOptions, run_chaos_benchmark
    from autoins.bench.chaos_faults import FAULT_KINDS
    from autoins.bench.chaos_report import BEGIN, END, json_line, render_table, section_markdown

    for name, value in (("--events", events), ("--drivers", drivers), ("--timeout", timeout), ("--rate", rate)):
        _positive(name, value)
    if kills < 0:
        raise UserFacingError(f"--kills must be ≥ 0, got {kills}")
    chosen = tuple(k.strip() for k in kinds.split(",") if k.strip()) if kinds else FAULT_KINDS
    settings = settings_from_env()
    options = ChaosOptions(events=events, drivers=drivers, rate=rate, kills=kills, kinds=chosen, explicit=each,
                           node_loss=node_loss, seed=seed, timeout_s=timeout,
                           command="autoins " + " ".join(shlex.quote(a) for a in sys.argv[1:]))
    out = err_console if as_json else console
    with _stdout_to_stderr(as_json):  # Ray prints its nodes' worker-death notices on stdout
        result = run_chaos_benchmark(settings, options, out)
    _report(result, "chaos", output if write else None, as_json, out, section_markdown(result), BEGIN, END,
            json_line, render_table)
    if not result["verified"]:
        raise fail("the faulty run differs from the fault-free one, or a fault was not recovered (see above)")
