"""Throughput of the simulator, measured in-process: `measure_throughput(n_readings, seed)`.

The only module of the package that reads a clock, and only to time itself: the readings it
produces are the same as `simulate`'s. The clock is injectable (tests pass a fake one).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from domain.simulator.population import Population
from domain.simulator.stream import simulate
from domain.simulator.wire import to_readings, to_wire_json

BENCH_START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def measure_throughput(
    n_readings: int, seed: int, *, n_drivers: int = 200, batch_size: int = 10_000,
    convert_readings: int = 100_000, clock: Callable[[], float] = time.perf_counter,
) -> dict[str, float]:
    """Readings/s of `simulate` (numpy batches, one core) and of `to_wire_json` / `to_readings`.

    Generates at least `n_readings` (stops at the first batch past it); converts the first
    `convert_readings` of them. Population set-up is timed separately.
    """
    if n_readings < 1:
        raise ValueError(f"n_readings must be ≥ 1, got {n_readings}")
    t0 = clock()
    population = Population.generate(n_drivers, seed)
    t1 = clock()
    days = max(1, -(-n_readings // (n_drivers * 2_500)) + 1)
    batches: list[np.ndarray] = []
    produced = 0
    t2 = clock()
    for batch in simulate(population, BENCH_START_MS, days * 86_400, seed, batch_size=batch_size):
        batches.append(batch)
        produced += len(batch)
        if produced >= n_readings:
            break
    t3 = clock()
    sample = np.concatenate(batches)[:convert_readings]
    t4 = clock()
    wire = to_wire_json(sample)
    t5 = clock()
    to_readings(sample)
    t6 = clock()
    return {
        "readings": float(produced),
        "drivers": float(n_drivers),
        "population_s": t1 - t0,
        "generate_s": t3 - t2,
        "generate_readings_per_s": produced / max(t3 - t2, 1e-9),
        "wire_json_readings": float(len(sample)),
        "wire_json_readings_per_s": len(sample) / max(t5 - t4, 1e-9),
        "wire_json_bytes_per_reading": sum(map(len, wire)) / max(len(wire), 1),
        "to_readings_per_s": len(sample) / max(t6 - t5, 1e-9),
    }
