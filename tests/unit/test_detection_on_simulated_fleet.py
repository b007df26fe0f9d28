"""The simulator and the trip machine together: what the system detects rises with the latent risk
the simulator drew, every simulated trip is found, and on the exact stream the harsh episodes that count
(grades medium and high) are the simulator's true ones. This is the check that features built on
detected events can recover the ground truth (docs/SIMULATOR.md, docs/DOMAIN.md)."""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np
import pytest

from domain.detection_quality import detected_of, quality
from domain.events import HarshAccelerationDetected, HarshBrakingDetected, HarshCorneringDetected, TripEnded
from domain.features import driver_features, feature_matrix
from domain.rules import TripRules
from domain.simulator import Population, simulate, to_readings
from domain.trip_machine import DriverState, step_many

START_MS = 1_780_000_000_000  # 2026-05-28, a fixed instant: domain code never reads the clock
HARSH = (HarshBrakingDetected, HarshAccelerationDetected, HarshCorneringDetected)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    rank_a = np.argsort(np.argsort(a)).astype(float)
    rank_b = np.argsort(np.argsort(b)).astype(float)
    return float(np.corrcoef(rank_a, rank_b)[0, 1])


@pytest.fixture(scope="module")
def fleet_run():
    population = Population.generate(100, seed=11)
    truth = {t.driver_id: t for t in population.truth_table()}
    rules = TripRules()
    states = {d: DriverState.initial(d, truth[d].timezone) for d in truth}
    events_by_driver: dict[str, list] = defaultdict(list)
    episodes: list = []
    for batch in simulate(population, START_MS, duration_s=2 * 86_400, seed=11, episodes=episodes):
        by_driver: dict[str, list] = defaultdict(list)
        for reading in to_readings(batch):
            by_driver[reading.driver_id].append(reading)
        for driver, readings in by_driver.items():
            states[driver], events = step_many(states[driver], readings, rules)
            events_by_driver[driver].extend(events)
    return population, truth, events_by_driver, episodes


def test_detected_harsh_rate_rises_with_latent_risk(fleet_run):
    # Harsh = grades medium and high, what features and scoring count (low-grade episodes are normal
    # firm braking that the simulator caps just under the thresholds: they carry no risk signal here).
    _population, truth, events_by_driver, _ = fleet_run
    drivers = sorted(truth)
    latent = np.array([truth[d].latent_risk_z for d in drivers])
    harsh_per_100km = []
    for driver in drivers:
        events = events_by_driver[driver]
        km = sum(e.summary.distance_m for e in events if isinstance(e, TripEnded)) / 1000
        harsh = sum(isinstance(e, HARSH) and e.grade != "low" for e in events)
        harsh_per_100km.append(100 * harsh / km if km else 0.0)
    rho = spearman(latent, np.array(harsh_per_100km))
    print(f"spearman(latent risk, detected harsh events per 100 km) = {rho:.3f}")
    assert rho > 0.3


def test_features_of_detected_trips_predict_the_true_claim_frequency_out_of_sample(fleet_run):
    _population, truth, events_by_driver, _ = fleet_run
    drivers = sorted(truth)
    rows = []
    for driver in drivers:
        trips = [e.summary for e in events_by_driver[driver] if isinstance(e, TripEnded)]
        rows.append(driver_features(trips, window_days=2))
    x = np.log1p(np.clip(feature_matrix(rows), 0, None))
    x = np.column_stack([np.ones(len(x)), x])
    y = np.log([truth[d].expected_claims_per_year for d in drivers])
    train, test = slice(0, 65), slice(65, None)
    coef, *_ = np.linalg.lstsq(x[train], y[train], rcond=None)
    rho = spearman(x[test] @ coef, y[test])
    print(f"held-out spearman(predicted log λ from detected features, true log λ) = {rho:.3f}")
    assert rho > 0.5


def test_every_driver_with_trips_has_ended_trips_and_no_event_id_repeats(fleet_run):
    _population, _truth, events_by_driver, _ = fleet_run
    ids = Counter(e.event_id for events in events_by_driver.values() for e in events)
    assert ids and max(ids.values()) == 1
    ended = sum(isinstance(e, TripEnded) for events in events_by_driver.values() for e in events)
    assert ended > len(events_by_driver)  # more than one trip per driver over two days


def test_on_the_exact_stream_the_harsh_episodes_that_count_are_the_true_ones(fleet_run):
    _population, _truth, events_by_driver, episodes = fleet_run
    found = detected_of(e for events in events_by_driver.values() for e in events)
    for q in quality(found, episodes):
        print(f"{q.kind}: precision {q.precision:.3f} recall {q.recall:.3f} ({q.detected} found, "
              f"{q.true_observed} true)")
        assert q.true_observed > 50 and q.precision >= 0.98 and q.recall >= 0.98
