"""`autoins bench api`: the plan's locust user against the Serve API, with a no-op endpoint measured in
the same seconds, then a no-think-time throughput phase; per-endpoint percentiles from exact timings.

Without `--url` it builds its own world (scratch database seeded with demo drivers and trips, private
Redis and broker, a small trained model, Ray + Serve with the API, risk and no-op apps) and removes it
afterwards; with `--url` it loads a running system (no no-op figures then: nothing is deployed).
Locust runs in a subprocess (gevent must not share a process with Ray/asyncio).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
from rich.console import Console
from rich.markup import escape

from autoins.errors import UserFacingError
from config.settings import Settings

USERS_FILE = Path(__file__).with_name("api_users.py")
NOOP_NAME = "noop"
LOGIN_NAME = "/api/v1/auth/login"


@dataclass(frozen=True)
class ApiBenchOptions:
    users: int = 100
    duration_s: int = 60
    spawn_rate: float = 10.0  # the plan's --spawn-rate
    throughput_users: int = 32  # 0 skips the throughput phase
    throughput_s: int = 20
    url: str | None = None
    drivers: int = 100
    command: str = ""


def percentiles(samples_ms: list[float]) -> dict:
    """p50/p95/p99 in ms (linear interpolation), rounded to 0.01; None when there are no samples."""
    if not samples_ms:
        return {"p50_ms": None, "p95_ms": None, "p99_ms": None}
    p50, p95, p99 = np.percentile(np.asarray(samples_ms, dtype=np.float64), [50, 95, 99])
    return {"p50_ms": round(float(p50), 2), "p95_ms": round(float(p95), 2), "p99_ms": round(float(p99), 2)}


def summarize_phase(raw: dict, elapsed_s: float) -> dict:
    """Per request name: percentiles, requests, req/s, errors; the login and the no-op kept apart."""
    endpoints, noop = {}, None
    total_errors = 0
    for name, samples in sorted(raw["timings"].items()):
        errors = int(raw["errors"].get(name, 0))
        total_errors += errors
        figures = {**percentiles(samples), "requests": len(samples), "rps": round(len(samples) / elapsed_s, 1),
                   "errors": errors}
        if name == NOOP_NAME:
            noop = figures
        elif name != LOGIN_NAME:
            endpoints[name] = figures
    return {"endpoints": endpoints, "noop": noop, "errors": total_errors,
            "login_errors": int(raw["errors"].get(LOGIN_NAME, 0))}


def run_locust(base_url: str, user_class: str, users: int, spawn_rate: float, duration_s: int, env: dict,
               out: Console) -> tuple[dict, float]:
    """One headless locust run of `user_class` from api_users.py; returns its exact timings and wall time."""
    with tempfile.TemporaryDirectory(prefix="autoins-locust-") as tmp:
        timings_path = Path(tmp) / "timings.json"
        argv = [sys.executable, "-m", "locust", "-f", str(USERS_FILE), user_class, "--headless", "--only-summary",
                "--host", base_url, "--users", str(users), "--spawn-rate", str(spawn_rate),
                "--run-time", f"{duration_s}s", "--stop-timeout", "5", "--loglevel", "WARNING"]
        started = time.monotonic()
        with out.status(f"locust: {users} × {user_class} for {duration_s} s against {base_url} …"):
            proc = subprocess.run(argv, env={**os.environ, **env, "AUTOINS_BENCH_TIMINGS": str(timings_path)},
                                  capture_output=True, text=True, timeout=duration_s + 120)
        elapsed = time.monotonic() - started
        if not timings_path.exists():
            raise UserFacingError(f"locust produced no timings (exit {proc.returncode}): "
                                  f"{(proc.stderr or proc.stdout).strip().splitlines()[-1:]}")
        return json.loads(timings_path.read_text()), min(elapsed, float(duration_s))


def cache_counters(metrics_text: str) -> dict[str, float]:
    """Sum of `cache_hits_total` / `cache_misses_total` samples by cache_type, from Prometheus text."""
    totals: dict[str, float] = {}
    for line in metrics_text.splitlines():
        if line.startswith("#") or "cache_" not in line:
            continue
        name = line.split("{", 1)[0].split(" ", 1)[0]
        for family in ("cache_hits_total", "cache_misses_total"):
            if name.endswith(family):
                level = "l1" if 'cache_type="l1"' in line else "l2" if 'cache_type="l2"' in line else "other"
                key = f"{level}_{'hits' if 'hits' in family else 'misses'}"
                totals[key] = totals.get(key, 0.0) + float(line.rsplit(" ", 1)[-1])
    return totals


def cache_hit_rate(before: dict[str, float], after: dict[str, float]) -> float | None:
    """Share of cache lookups answered by L1 or L2 during the run (lookups = L1 hits + L1 misses)."""
    delta = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in set(before) | set(after)}
    lookups = delta.get("l1_hits", 0.0) + delta.get("l1_misses", 0.0)
    if lookups <= 0:
        return None
    return round((delta.get("l1_hits", 0.0) + delta.get("l2_hits", 0.0)) / lookups, 4)


async def _scrape(base_url: str, operator_token: str | None) -> str:
    """`/metrics` with the operator token when one is configured (docs/SECURITY.md §4); "" if refused."""
    headers = {"Authorization": f"Bearer {operator_token}"} if operator_token else {}
    async with httpx.AsyncClient(timeout=10.0) as client:
        response = await client.get(f"{base_url}/metrics", headers=headers)
        return response.text if response.status_code == 200 else ""


async def wait_ready(base_url: str, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    async with httpx.AsyncClient(timeout=5.0) as client:
        while time.monotonic() < deadline:
            try:
                response = await client.get(f"{base_url}/health/ready")
                if response.status_code == 200:
                    return
                last = f"{response.status_code} {response.text[:200]}"
            except httpx.HTTPError as error:
                last = repr(error)
            await asyncio.sleep(0.5)
    raise UserFacingError(f"the API at {base_url} did not become ready within {timeout_s:.0f} s: {last}")


def measure(base_url: str, options: ApiBenchOptions, out: Console, noop_path: str | None,
            operator_token: str | None = None) -> dict:
    """Both phases against a ready API; cache hit rate from /metrics deltas around the plan phase."""
    env = {"AUTOINS_BENCH_NOOP_PATH": noop_path or "/noop/"}
    before = cache_counters(asyncio.run(_scrape(base_url, operator_token)))
    raw, elapsed = run_locust(base_url, "PlanUser", options.users, options.spawn_rate, options.duration_s, env, out)
    after = cache_counters(asyncio.run(_scrape(base_url, operator_token)))
    result = summarize_phase(raw, elapsed)
    if noop_path is None:
        result["noop"] = None
    result["cache_hit_rate"] = cache_hit_rate(before, after)
    result["cache_counters"] = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in sorted(after)}
    if result["noop"] and result["noop"]["p95_ms"]:
        result["p95_over_noop"] = {name: round(e["p95_ms"] / result["noop"]["p95_ms"], 2)
                                   for name, e in result["endpoints"].items() if e["p95_ms"] is not None}
    if options.throughput_users > 0:
        raw_t, elapsed_t = run_locust(base_url, "ThroughputUser", options.throughput_users,
                                      float(options.throughput_users), options.throughput_s, env, out)
        phase = summarize_phase(raw_t, elapsed_t)
        api_samples = [t for name, ts in raw_t["timings"].items() if name not in (NOOP_NAME, LOGIN_NAME) for t in ts]
        result["throughput"] = {"users": options.throughput_users, "duration_s": options.throughput_s,
                                "rps": round(len(api_samples) / elapsed_t, 1), **percentiles(api_samples),
                                "errors": phase["errors"], "noop": phase["noop"]}
    return result


def bench_date() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def own_world_settings(base: Settings, database_url: str, redis_url: str, bootstrap: str, models_dir: Path
                       ) -> Settings:
    return base.with_overrides(database_url=database_url, redis_url=redis_url, kafka_bootstrap_servers=bootstrap,
                               models_dir=models_dir)


def run_api_benchmark(settings: Settings, options: ApiBenchOptions, out: Console) -> dict:
    """Build (or use) the system, run both phases, return the result dict (see api_report.json_line)."""
    from autoins.bench.api_world import NOOP_ROUTE, ApiWorld
    from autoins.bench.report import machine_info

    if options.url is None and settings.ray_address:
        raise UserFacingError("RAY_ADDRESS is set: the bench would deploy over that cluster's apps; "
                              "pass --url to load a running system instead")
    world = None
    try:
        if options.url is None:
            world = ApiWorld(settings, out, drivers=options.drivers)
            base_url = world.open()
            noop_path: str | None = f"{NOOP_ROUTE}/"
            postgres = world.notes[0]
            replicas = world.settings.api_num_replicas
        else:
            base_url, noop_path, postgres, replicas = options.url.rstrip("/"), None, "(running system)", None
        asyncio.run(wait_ready(base_url))
        machine = machine_info(postgres, "private" if world else "(running system)")
        token = settings.operator_token.get_secret_value() if settings.operator_token is not None else None
        result = measure(base_url, options, out, noop_path, token)
    finally:
        if world is not None:
            for problem in world.close():
                out.print(f"[yellow]cleanup:[/yellow] {escape(str(problem))}")
    return {**result, "users": options.users, "duration_s": options.duration_s, "base_url": base_url,
            "shape": {"api_replicas": replicas}, "machine": machine, "date": bench_date(),
            "command": options.command}
