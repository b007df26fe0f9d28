"""A labelled training set from simulated drivers: readings → trip machine → features, plus claims. Pure.

Features come from the real fold: the simulator's readings go through `domain.trip_machine.step_many`
(what a DriverShard runs), the `TripEnded` summaries through `domain.features.driver_features`. Labels
are claim counts drawn from each driver's true λ over `exposure_years` (seeded), independent of the
telematics window: the window sets how noisy the features are, the exposure how noisy the labels are.
"""

from __future__ import annotations

from collections import defaultdict

import msgspec
import numpy as np

from domain.events import TripEnded
from domain.features import FEATURE_NAMES, driver_features
from domain.rules import TripRules
from domain.simulator import Population, sample_claim_counts, simulate, to_readings
from domain.trip_machine import DriverState, step_many, tick
from domain.trip_summary import TripSummary

# A fixed instant (2026-05-28 UTC): domain code never reads the clock, so a seed gives one dataset.
START_MS = 1_780_000_000_000
DAY_MS = 86_400_000


class DatasetSpec(msgspec.Struct, frozen=True, kw_only=True):
    """What to simulate: `drivers` drivers observed for `days` days, claims over `exposure_years`.
    The defaults are what the Gini acceptance needs with margin (docs/MODEL.md §Metrics)."""

    seed: int = 7
    drivers: int = 2_000
    days: int = 10
    exposure_years: float = 5.0

    def __post_init__(self) -> None:
        if self.drivers < 10 or self.days < 1 or not self.exposure_years > 0 or self.seed < 0:
            raise ValueError(f"need drivers ≥ 10, days ≥ 1, exposure_years > 0, seed ≥ 0; got {self}")


class FeatureChunk(msgspec.Struct, frozen=True):
    """Features of drivers `first_driver_no …`, one row per driver in driver order (FEATURE_NAMES)."""

    first_driver_no: int
    features: np.ndarray  # (n, len(FEATURE_NAMES)) float64


class LabelledSet(msgspec.Struct, frozen=True, kw_only=True):
    """Rows aligned by driver. `true_rate` is λ (claims/year), `claims` the draw over `exposure_years`."""

    driver_ids: tuple[str, ...]
    features: np.ndarray
    true_rate: np.ndarray
    claims: np.ndarray
    exposure_years: np.ndarray

    def __len__(self) -> int:
        return len(self.driver_ids)

    def take(self, rows: np.ndarray) -> LabelledSet:
        return LabelledSet(
            driver_ids=tuple(self.driver_ids[i] for i in rows.tolist()),
            features=self.features[rows],
            true_rate=self.true_rate[rows],
            claims=self.claims[rows],
            exposure_years=self.exposure_years[rows],
        )


def simulate_features(
    seed: int, first_driver_no: int, n_drivers: int, days: int, rules: TripRules | None = None
) -> FeatureChunk:
    """Simulate drivers `first_driver_no … + n_drivers − 1` for `days` days and fold their readings
    through the trip machine. A driver's row depends only on (seed, driver_no, days): chunks of a
    population can be computed apart (in parallel) and concatenated."""
    trips = simulate_trips(seed, first_driver_no, n_drivers, days, rules)
    rows = np.zeros((n_drivers, len(FEATURE_NAMES)), dtype=np.float64)
    for i, driver in enumerate(trips):
        rows[i] = driver_features(trips[driver], window_days=days).to_vector()
    return FeatureChunk(first_driver_no, rows)


def simulate_trips(
    seed: int, first_driver_no: int, n_drivers: int, days: int, rules: TripRules | None = None
) -> dict[str, list[TripSummary]]:
    """The trips of drivers `first_driver_no …` over `days` simulated days, by driver id in driver order:
    the simulator's readings folded by the trip machine, open trips closed by letting time pass."""
    rules = rules or TripRules()
    population = Population.generate(n_drivers, seed, first_driver_no=first_driver_no)
    timezones = {p.driver_id: p.zone.name for p in population.profiles}
    states = {d: DriverState.initial(d, tz) for d, tz in timezones.items()}
    trips: dict[str, list] = defaultdict(list)
    duration_s = days * 86_400
    for batch in simulate(population, START_MS, duration_s=duration_s, seed=seed):
        by_driver: dict[str, list] = defaultdict(list)
        for reading in to_readings(batch):
            by_driver[reading.driver_id].append(reading)
        for driver, readings in by_driver.items():
            states[driver], events = step_many(states[driver], readings, rules)
            trips[driver].extend(e.summary for e in events if isinstance(e, TripEnded))
    # Trips started in the window may run past it; let time pass so every open trip closes.
    end_ms = START_MS + duration_s * 1000 + 2 * DAY_MS
    for driver, state in states.items():
        _, events = tick(state, end_ms, rules)
        trips[driver].extend(e.summary for e in events if isinstance(e, TripEnded))
    return {driver: trips[driver] for driver in population.driver_ids}


def chunk_plan(drivers: int, chunk: int) -> list[tuple[int, int]]:
    """(first_driver_no, n) pieces covering drivers 1 … `drivers`."""
    return [(first, min(chunk, drivers - first + 1)) for first in range(1, drivers + 1, chunk)]


def label(spec: DatasetSpec, features: np.ndarray) -> LabelledSet:
    """Attach truth and seeded claim counts to the features of drivers 1 … spec.drivers."""
    if features.shape != (spec.drivers, len(FEATURE_NAMES)):
        raise ValueError(f"expected features of shape {(spec.drivers, len(FEATURE_NAMES))}, got {features.shape}")
    truth = Population.generate(spec.drivers, spec.seed).truth_table()
    claims = sample_claim_counts(truth, spec.exposure_years, spec.seed)
    return LabelledSet(
        driver_ids=tuple(t.driver_id for t in truth),
        features=features,
        true_rate=np.array([t.expected_claims_per_year for t in truth], dtype=np.float64),
        claims=claims.astype(np.float64),
        exposure_years=np.full(spec.drivers, spec.exposure_years, dtype=np.float64),
    )


def build_dataset(spec: DatasetSpec, rules: TripRules | None = None) -> LabelledSet:
    """Simulate, fold and label in one process (small sets and tests; the CLI parallelizes chunks)."""
    chunk = simulate_features(spec.seed, 1, spec.drivers, spec.days, rules)
    return label(spec, chunk.features)
