"""`autoins train`: simulate a fleet, fold it through the trip machine, fit, save an artifact and its report.

The shell around the pure pieces (domain/risk_model): chunks of drivers are simulated in worker
processes (a driver's features depend only on (seed, driver, days), so chunks are independent), the
features are cached under `data_dir/training-cache` keyed by (feature spec, seed, drivers, days),
and the artifact goes to `models_dir` (storage/files/model_artifacts.py).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shlex
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import numpy as np
import typer
from pydantic import SecretStr
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from autoins.cli_support import console, err_console, settings_from_env, user_errors
from autoins.errors import UserFacingError
from config.settings import Settings
from domain.features import FEATURE_NAMES, FEATURE_SPEC_VERSION
from domain.risk_model.dataset import DatasetSpec, chunk_plan, label, simulate_features
from domain.risk_model.spec import TrainingParams
from storage.files.model_artifacts import feature_cache_path, read_feature_cache, save_artifact, write_feature_cache

if TYPE_CHECKING:
    from domain.risk_model.training import TrainingResult

CHUNK_DRIVERS = 50
DEFAULTS = DatasetSpec()
# Features of the default data set, shipped: simulating 2,000 drivers × 10 days through the trip machine
# costs 5–15 CPU minutes, so a fresh machine (`make demo`) trains the default model in seconds instead.
# tests/unit/test_training_gini.py recomputes rows of it to prove it is the simulator's current output.
SHIPPED_DATA_DIR = Path(__file__).parent / "data"


@dataclass(frozen=True, slots=True)
class TrainOutcome:
    model_version: str
    path: Path
    result: TrainingResult
    timings_s: dict[str, float]
    features_cached: bool


def absolute_models_dir(settings: Settings) -> Path:
    """`models_dir` made absolute against the working directory (before settings travel to Ray workers)."""
    return settings.models_dir if settings.models_dir.is_absolute() else (Path.cwd() / settings.models_dir).resolve()


def _chunk(args: tuple[int, int, int, int]) -> np.ndarray:
    seed, first, n, days = args
    return simulate_features(seed, first, n, days).features


def simulated_features(spec: DatasetSpec, *, workers: int, on_chunk: Callable[[int, int], None] | None = None
                       ) -> np.ndarray:
    """Features of drivers 1 … spec.drivers; chunks in `workers` spawned processes (1 = in this process)."""
    plan = chunk_plan(spec.drivers, CHUNK_DRIVERS)
    jobs = [(spec.seed, first, n, spec.days) for first, n in plan]
    parts: list[np.ndarray] = []
    if workers <= 1:
        mapped = map(_chunk, jobs)
        pool = None
    else:
        # spawn, not fork: the caller may hold Ray or other threads; a forked copy of those is unsafe.
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
        mapped = pool.map(_chunk, jobs)
    try:
        for part in mapped:
            parts.append(part)
            if on_chunk:
                on_chunk(len(parts), len(jobs))
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return np.vstack(parts)


def train_model(
    spec: DatasetSpec, params: TrainingParams, *, models_dir: Path, signing_key: SecretStr, data_dir: Path | None,
    workers: int, command: str, on_chunk: Callable[[int, int], None] | None = None,
) -> TrainOutcome:
    """Features (cached when `data_dir` is given) → labels → fit → artifact + report. Returns the version."""
    from autoins.model_report import write_report  # matplotlib and sklearn: imported only when training
    from domain.risk_model.training import train

    timings: dict[str, float] = {}
    started = time.perf_counter()
    shape = (spec.drivers, len(FEATURE_NAMES))
    cache = feature_cache_path(data_dir, spec.seed, spec.drivers, spec.days, FEATURE_SPEC_VERSION) if data_dir else None
    features = read_feature_cache(cache, shape) if cache else None
    if features is None and data_dir:
        shipped = feature_cache_path(SHIPPED_DATA_DIR, spec.seed, spec.drivers, spec.days, FEATURE_SPEC_VERSION)
        features = read_feature_cache(shipped, shape)
    cached = features is not None
    if features is None:
        features = simulated_features(spec, workers=workers, on_chunk=on_chunk)
        if cache:
            write_feature_cache(cache, features)
    timings["simulate_and_fold"] = time.perf_counter() - started
    t0 = time.perf_counter()
    info = {"drivers": float(spec.drivers), "days": float(spec.days), "exposure_years": spec.exposure_years,
            "seed": float(spec.seed)}
    result = train(label(spec, features), params, info)
    timings["fit"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    path = save_artifact(models_dir, result.spec, result.estimator, created_at=datetime.now(UTC).isoformat(),
                         signing_key=signing_key)
    write_report(path, result, path.name, command, timings)
    timings["save_and_report"] = time.perf_counter() - t0
    return TrainOutcome(path.name, path, result, timings, cached)


@user_errors
def train_command(
    drivers: Annotated[int, typer.Option("--drivers", help="Simulated drivers.")] = DEFAULTS.drivers,
    days: Annotated[int, typer.Option("--days", help="Telematics window per driver (days).")] = DEFAULTS.days,
    seed: Annotated[int, typer.Option("--seed", help="Seed for the fleet, the claims and the fit.")] = DEFAULTS.seed,
    exposure_years: Annotated[float, typer.Option("--exposure-years", help="Claims history per driver (years).")
                              ] = DEFAULTS.exposure_years,
    workers: Annotated[int | None, typer.Option("--workers", help="Simulation processes (default: CPUs).")] = None,
    cache: Annotated[bool, typer.Option("--cache/--no-cache", help="Reuse simulated features of the same "
                                        "seed, drivers and days.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON line.")] = False,
) -> None:
    """Train the claim frequency model on a simulated fleet and save a versioned artifact with its report."""
    settings = settings_from_env()
    try:
        spec = DatasetSpec(seed=seed, drivers=drivers, days=days, exposure_years=exposure_years)
    except ValueError as error:
        raise UserFacingError(str(error)) from None
    if workers is not None and workers < 1:
        raise UserFacingError(f"--workers must be ≥ 1, got {workers}")
    n_workers = workers or min(os.cpu_count() or 1, max(1, -(-drivers // CHUNK_DRIVERS)))
    data_dir = settings.data_dir if settings.data_dir.is_absolute() else Path.cwd() / settings.data_dir
    command = "autoins " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    out = err_console if as_json else console
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=out, transient=as_json) as progress:
        task = progress.add_task(f"simulating {drivers:,} drivers × {days} days ({n_workers} processes)",
                                 total=len(chunk_plan(drivers, CHUNK_DRIVERS)))
        outcome = train_model(
            spec, TrainingParams(seed=seed), models_dir=absolute_models_dir(settings),
            signing_key=settings.model_signing_key,
            data_dir=data_dir if cache else None, workers=n_workers, command=command,
            on_chunk=lambda done, total: progress.update(task, completed=done),
        )
        progress.update(task, completed=progress.tasks[0].total, description="simulated (or cached) and fitted")
    m = outcome.result.spec.metrics
    if as_json:
        line = {"model_version": outcome.model_version, "gini": m["gini"], "oracle_gini": m["oracle_gini"],
                "poisson_deviance": m["poisson_deviance"], "gini_ratio": m["gini_ratio"],
                "gini_vs_truth": m["gini_vs_truth"], "family": outcome.result.spec.family,
                "path": str(outcome.path), "features_cached": outcome.features_cached,
                "timings_s": {k: round(v, 2) for k, v in outcome.timings_s.items()}}
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()
        return
    console.print(f"model [bold]{outcome.model_version}[/bold] ({outcome.result.spec.family}) → {outcome.path}",
                  highlight=False)
    console.print(f"gini {m['gini']:.4f} vs oracle {m['oracle_gini']:.4f} (ratio {m['gini_ratio']:.3f}; "
                  f"vs true λ {m['gini_vs_truth']:.4f}); Poisson deviance {m['poisson_deviance']:.4f}", highlight=False)
    console.print(f"report: {outcome.path / 'report.md'}", highlight=False)
