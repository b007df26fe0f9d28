"""The fleet stream: every driver's trips merged into one global time order, in numpy batches. Pure.

Order is total: by (ts_ms, driver_no) — what a fleet produces into Kafka. Trips are generated in
start order one simulated day at a time; after each group of trips, every pending reading older
than the next trip's start is final (no later trip can precede it) and is emitted. The output
(concatenated) does not depend on `batch_size`, and the trips of a window [start, end) are exactly
those whose ignition_on falls in it, so adjacent windows partition a longer simulation.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from domain.simulator.population import Population
from domain.simulator.profiles import DriverProfile
from domain.simulator.realism import RealismConfig, device_has_accel, mark_observed, phone_trip
from domain.simulator.roads import DEFAULT_CONFIG, SimConfig
from domain.simulator.schedule import DAY_MS, TRIP_STREAM, PlannedTrip, day_schedule, driving_day_of
from domain.simulator.trips import READING_DTYPE, generate_trip_with_truth
from domain.simulator.truth import TrueEpisode

_REALISM_STREAM = 0x9A0E  # a trip's realism noise has its own RNG stream: default output is unchanged

_RAW = np.dtype((np.void, READING_DTYPE.itemsize))  # rows as opaque bytes: 5–10× faster to move


def _concat(parts: list[np.ndarray]) -> np.ndarray:
    if len(parts) == 1:
        return parts[0]
    return np.concatenate([p.view(_RAW) for p in parts]).view(READING_DTYPE)


MIN_START_MS = 2 * DAY_MS  # keeps driving-day numbers (and trip_no) non-negative
MAX_END_MS = 1 << 43  # ts_ms << 20 | driver_no must fit in int64


class _Merger:
    """Pending readings (each trip in time order), cut at a time bound, sorted and re-batched."""

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size
        self.pending: list[np.ndarray] = []
        self.pending_n = 0
        self.carried_n = 0
        self.out: list[np.ndarray] = []
        self.out_n = 0

    def add(self, rows: np.ndarray) -> None:
        self.pending.append(rows)
        self.pending_n += len(rows)

    def wants_flush(self) -> bool:
        # Flush once the new readings outnumber the carried ones: each reading is copied O(1) times.
        return self.pending_n - self.carried_n >= max(self.batch_size, self.carried_n, 4096)

    def flush(self, bound_ms: int | None) -> Iterator[np.ndarray]:
        """Emit, in (ts_ms, driver_no) order, every pending reading older than `bound_ms` (None = all).
        Only the emitted part is sorted; the rest waits unsorted, so each reading is sorted once."""
        if self.pending:
            rows = _concat(self.pending)
            if bound_ms is None:
                ready, rest = rows, rows[:0]
            else:
                early = rows["ts_ms"] < bound_ms
                ready, rest = np.take(rows, np.flatnonzero(early)), np.take(rows, np.flatnonzero(~early))
            self.pending = [rest] if len(rest) else []
            self.pending_n = self.carried_n = len(rest)
            if len(ready):
                key = (ready["ts_ms"] << 20) | ready["driver_no"].astype(np.int64)
                self.out.append(np.take(ready, np.argsort(key, kind="stable")))
                self.out_n += len(ready)
        yield from self._batches(final=bound_ms is None)

    def _batches(self, *, final: bool) -> Iterator[np.ndarray]:
        if self.out_n < self.batch_size and not (final and self.out_n):
            return
        buf = _concat(self.out)
        full = len(buf) // self.batch_size * self.batch_size
        for i in range(0, full, self.batch_size):
            yield buf[i : i + self.batch_size]
        tail = buf[full:]
        if final and len(tail):
            yield tail
            tail = tail[:0]
        self.out = [tail] if len(tail) else []
        self.out_n = len(tail)


def _trips_in(
    population: Population, seed: int, lo_ms: int, hi_ms: int, cfg: SimConfig,
    cache: dict[int, tuple[int, list[PlannedTrip]]],
) -> list[tuple[PlannedTrip, DriverProfile]]:
    found: list[tuple[PlannedTrip, DriverProfile]] = []
    for p in population.profiles:
        for day in range(driving_day_of(p, lo_ms, cfg), driving_day_of(p, hi_ms - 1, cfg) + 1):
            hit = cache.get(p.driver_no)
            if hit is None or hit[0] != day:
                hit = (day, day_schedule(seed, p, day, cfg))
                cache[p.driver_no] = hit
            found.extend((t, p) for t in hit[1] if lo_ms <= t.start_ms < hi_ms)
    found.sort(key=lambda tp: (tp[0].start_ms, tp[0].driver_no))
    return found


def simulate(
    population: Population, start_ms: int, duration_s: float, seed: int, *,
    batch_size: int = 10_000, config: SimConfig = DEFAULT_CONFIG, realism: RealismConfig | None = None,
    episodes: list[TrueEpisode] | None = None,
) -> Iterator[np.ndarray]:
    """Yield READING_DTYPE batches (≤ `batch_size` rows; all full but the last) in (ts_ms, driver_no)
    order: every trip whose ignition_on lies in [start_ms, start_ms + duration_s·1000), whole.

    `realism` (e.g. `realism.PHONE`) turns each trip into what a phone records (docs/SIMULATOR.md §11);
    None gives the exact default stream. `episodes`, when given, receives every trip's true harsh
    episodes as its trip is generated (the ground truth for detector checks).
    Deterministic for (population, start_ms, duration_s, seed, config, realism); no clock, no global RNG.
    """
    end_ms = start_ms + round(duration_s * 1000)
    if start_ms < MIN_START_MS or end_ms > MAX_END_MS:
        raise ValueError(f"start_ms and end must lie in [{MIN_START_MS}, {MAX_END_MS}) epoch ms, got {start_ms}")
    if not duration_s > 0:
        raise ValueError(f"duration_s must be > 0, got {duration_s!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
    if seed < 0:
        raise ValueError(f"seed must be ≥ 0, got {seed}")
    merger = _Merger(batch_size)
    cache: dict[int, tuple[int, list[PlannedTrip]]] = {}
    lo = start_ms
    while lo < end_ms:
        hi = min(lo + DAY_MS, end_ms)
        planned = _trips_in(population, seed, lo, hi, config, cache)
        for i, (trip, p) in enumerate(planned):
            rng = np.random.default_rng([seed, p.driver_no, trip.day, trip.index, TRIP_STREAM])
            rows, truth = generate_trip_with_truth(
                rng, p, config, start_ms=trip.start_ms, dist_km=trip.dist_km, budget_s=trip.budget_s,
                lat0=trip.lat0, lon0=trip.lon0, trip_no=trip.trip_no, seed=seed,
            )
            if realism is not None:
                noise = np.random.default_rng([seed, p.driver_no, trip.day, trip.index, _REALISM_STREAM])
                rows, kept = phone_trip(rows, noise, realism, accel_known=device_has_accel(seed, p.driver_no, realism))
                truth = mark_observed(truth, kept, trip.start_ms)
            if episodes is not None:
                episodes.extend(truth)
            merger.add(rows)
            if merger.wants_flush():
                bound = planned[i + 1][0].start_ms if i + 1 < len(planned) else hi
                yield from merger.flush(bound)
        yield from merger.flush(hi)
        lo = hi
    yield from merger.flush(None)


def simulate_all(population: Population, start_ms: int, duration_s: float, seed: int, **kwargs) -> np.ndarray:
    """The whole stream of `simulate` as one array (convenience for tests and small runs)."""
    batches = list(simulate(population, start_ms, duration_s, seed, **kwargs))
    return _concat(batches) if batches else np.empty(0, dtype=READING_DTYPE)
