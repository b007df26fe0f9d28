"""Deterministic fleet simulator: drivers with latent risk, 1 Hz trips, ground-truth claim frequency.

Pure: numpy Generators seeded from (seed, driver, day, trip), no global RNG, no clock (the start
time is an argument; only `measure_throughput` times itself). See docs/SIMULATOR.md.

    population = Population.generate(200, seed=7)
    for batch in simulate(population, start_ms, duration_s=86_400, seed=7):   # READING_DTYPE arrays
        payloads = to_wire_json(batch)                                      # list[bytes] for Kafka
    population.truth_table()                                                # λ per driver
"""

from domain.simulator.bench import measure_throughput
from domain.simulator.population import Population
from domain.simulator.profiles import ZONES, DriverProfile, Zone, driver_id, utc_offset_ms
from domain.simulator.roads import DEFAULT_CONFIG, ROAD_TYPES, RoadType, SimConfig
from domain.simulator.stream import simulate, simulate_all
from domain.simulator.trips import READING_DTYPE, TYPE_NAMES
from domain.simulator.truth import (
    DEFAULT_TRUTH,
    DriverTruth,
    TruthModel,
    claim_frequency,
    log_claim_frequency,
    sample_claim_counts,
)
from domain.simulator.wire import event_id_strings, to_readings, to_wire_json

__all__ = [
    "DEFAULT_CONFIG",
    "DEFAULT_TRUTH",
    "READING_DTYPE",
    "ROAD_TYPES",
    "TYPE_NAMES",
    "ZONES",
    "DriverProfile",
    "DriverTruth",
    "Population",
    "RoadType",
    "SimConfig",
    "TruthModel",
    "Zone",
    "claim_frequency",
    "driver_id",
    "event_id_strings",
    "log_claim_frequency",
    "measure_throughput",
    "sample_claim_counts",
    "simulate",
    "simulate_all",
    "to_readings",
    "to_wire_json",
    "utc_offset_ms",
]
