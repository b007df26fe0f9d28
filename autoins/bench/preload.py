"""Exactly N simulator readings into the benchmark's topic, before anything consumes it.

The simulator (domain.simulator) yields a fleet's stream in global time order; we take its first N
readings. The window is sized from the simulator's ~3,600 readings per driver-day (docs/SIMULATOR.md)
with a wide margin — the generator is lazy, so a longer window costs nothing — and it ends
`TRIP_TAIL_ALLOWANCE_S` before now as in `autoins simulate`, so every device time lies inside the
validation window (not in the future, far inside retention).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from autoins.errors import UserFacingError
from autoins.simulate import TRIP_TAIL_ALLOWANCE_S, driver_keys
from config.rules import validation_rules
from config.settings import Settings
from domain.partition_calendar import retention_start_ms
from domain.rules import ValidationRules
from domain.simulator import Population, simulate, to_wire_json
from storage.kafka.producer import ProduceError, ReadingProducer

READINGS_PER_DRIVER_DAY = 3_600  # docs/SIMULATOR.md: typical output
_DAY_S = 86_400
_MIN_WINDOW_S = _DAY_S  # at least one whole driving day: every local time of day is represented


@dataclass(frozen=True, slots=True)
class Preloaded:
    readings: int
    seconds: float
    first_ts_ms: int
    last_ts_ms: int
    window_start_ms: int
    window_s: float


def window_for(events: int, drivers: int, now_ms: int, rules: ValidationRules) -> tuple[int, float]:
    """(start_ms, duration_s): room for ~3× the expected readings, ending 7 h before `now_ms`; refuses
    a window that would reach past retention (too few drivers for N)."""
    expected_s = events / (drivers * READINGS_PER_DRIVER_DAY) * _DAY_S
    duration_s = max(_MIN_WINDOW_S, math.ceil(3 * expected_s / _DAY_S) * _DAY_S)
    retained_s = (now_ms - retention_start_ms(now_ms, rules.retention_months)) / 1000
    limit_s = retained_s - 2 * _DAY_S - TRIP_TAIL_ALLOWANCE_S
    if duration_s > limit_s:
        raise UserFacingError(f"{events:,} readings from {drivers:,} drivers need ~{expected_s / _DAY_S:,.0f} "
                              f"simulated days, beyond the {rules.retention_months}-month retention: use more "
                              "--drivers")
    return now_ms - round((duration_s + TRIP_TAIL_ALLOWANCE_S) * 1000), float(duration_s)


def preload(settings: Settings, population: Population, events: int, seed: int, now_ms: int,
            console: Console, *, rate: float | None = None, label: str = "preloading Kafka") -> Preloaded:
    """Produce the first `events` readings of the fleet's stream (keyed by driver id) and wait for every
    acknowledgement; a progress bar on `console`. `rate` (readings/s) paces the production (chaos runs feed a
    running pipeline); None produces as fast as the broker takes them."""
    start_ms, duration_s = window_for(events, len(population.profiles), now_ms, validation_rules(settings))
    producer = ReadingProducer(settings, log_level=2)
    produced, first_ts, last_ts = 0, None, None
    started = time.monotonic()
    try:
        with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TextColumn("readings"),
                      TextColumn("{task.fields[per_s]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                      console=console, transient=False) as progress:
            task = progress.add_task("preload", total=events, per_s="")
            chunk = max(1, int(rate / 10)) if rate else 10_000  # paced: ~0.1 s of readings per chunk
            for batch in simulate(population, start_ms, duration_s, seed, batch_size=chunk):
                part = batch[: events - produced]
                produced += producer.produce_many(to_wire_json(part), driver_keys(part))
                if rate:
                    ahead_s = produced / rate - (time.monotonic() - started)
                    if ahead_s > 0:
                        time.sleep(ahead_s)
                first_ts = int(part["ts_ms"][0]) if first_ts is None else first_ts
                last_ts = int(part["ts_ms"][-1])
                elapsed = max(time.monotonic() - started, 1e-9)
                progress.update(task, completed=produced, per_s=f"{produced / elapsed:,.0f}/s")
                if produced >= events:
                    break
            producer.flush(120.0)
    except ProduceError as error:
        raise UserFacingError(str(error)) from None
    finally:
        producer.close()
    if produced < events:
        raise UserFacingError(f"the simulator gave only {produced:,} readings for {len(population.profiles):,} "
                              f"drivers in {duration_s / _DAY_S:.0f} days: use more --drivers")
    return Preloaded(produced, time.monotonic() - started, first_ts, last_ts, start_ms, duration_s)
