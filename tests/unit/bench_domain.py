"""Throughput of the domain core (not a test): `.venv/bin/python -m tests.unit.bench_domain`.

Measures `step` on realistic 1 Hz trips and `decode_batch` on their wire JSON, with time.perf_counter,
and the size of an idle snapshot. Figures go to docs/DOMAIN.md.
"""

from __future__ import annotations

import math
import random
import time

from domain.driver_state import DriverState
from domain.readings import Reading, ReadingType
from domain.rules import TripRules, ValidationRules
from domain.trip_machine import step, step_many, tick
from domain.validation import decode_batch, encode_reading
from tests.unit.domain_helpers import Drive


def realistic_drive(n_readings: int, seed: int = 7) -> list[Reading]:
    """Trips of 10–40 min at 1 Hz: urban/highway speed profiles with limits, turns, lights, phone use."""
    rng = random.Random(seed)
    d = Drive(driver_id="driver0001")
    while len(d.readings) < n_readings:
        d.ignition_on()
        for _ in range(rng.randint(600, 2400)):
            cruise = rng.choice((30.0, 50.0, 50.0, 90.0, 110.0, 130.0))
            if rng.random() < 0.01:  # a red light
                for _ in range(rng.randint(30, 90)):
                    d.add(speed_kmh=0.0, limit_kmh=50.0)
                continue
            speed = max(0.0, min(160.0, d.speed_kmh + rng.gauss(0.0, 2.0) + 0.05 * (cruise - d.speed_kmh)))
            accel = (speed - d.speed_kmh) / 3.6 + (rng.choice((-4.5, 3.5)) if rng.random() < 0.003 else 0.0)
            kind = ReadingType.PHONE_USE if rng.random() < 0.01 else ReadingType.POSITION
            d.add(
                speed_kmh=speed,
                accel_ms2=accel,
                heading=d.heading + rng.gauss(0.0, 3.0 if speed > 20 else 0.5),
                kind=kind,
                limit_kmh=50.0 if cruise <= 50 else 90.0 if cruise <= 90 else 130.0,
            )
        d.stop(10)
        d.ignition_off()
        d.silence(rng.randint(600, 20_000))
    return d.readings[:n_readings]


def _per_s(n: int, seconds: float) -> str:
    return f"{n / seconds:,.0f}/s"


def main() -> None:
    rules = TripRules()
    readings = realistic_drive(100_000)
    for label, batch in (("step (one call per reading)", 1), ("step_many (10k batches)", 10_000)):
        best = math.inf
        for _ in range(3):
            state = DriverState.initial("driver0001")
            t = time.perf_counter()
            if batch == 1:
                for r in readings:
                    state, _ = step(state, r, rules)
            else:
                for i in range(0, len(readings), batch):
                    state, _ = step_many(state, readings[i : i + batch], rules)
            best = min(best, time.perf_counter() - t)
        print(f"{label}: {len(readings):,} readings in {best:.3f} s = {_per_s(len(readings), best)}")

    state = DriverState.initial("driver0001", "Europe/Paris")
    state, events = step_many(state, readings, rules)
    state, _ = tick(state, readings[-1].ts_ms + 7_200_000, rules)
    print(f"events from {len(readings):,} readings: {len(events)}; idle snapshot: {len(state.to_bytes())} bytes")

    raws = [encode_reading(r) for r in readings]
    now_ms = readings[-1].ts_ms
    vrules = ValidationRules(retention_months=120)
    best = math.inf
    for _ in range(3):
        t = time.perf_counter()
        ok, bad = decode_batch(raws, now_ms, vrules)
        best = min(best, time.perf_counter() - t)
    assert len(ok) == len(raws) and not bad
    print(f"decode_batch: {len(raws):,} payloads in {best:.3f} s = {_per_s(len(raws), best)}")


if __name__ == "__main__":
    main()
