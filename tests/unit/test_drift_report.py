"""Fairness and drift handlers (usecases/fairness.py) over the in-memory reader: the inputs the model saw are
recomputed from each latest score's window and kept only when they hash to what the score recorded."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import numpy as np
import pytest

from domain.fairness import SCORE_BINS, ReferenceBins, psi_table, reference_bins
from domain.risk_model.inputs import MODEL_INPUTS, raw_inputs
from domain.scoring import window_features
from domain.trip_summary import TripSummary
from storage.memory.fairness import InMemoryFairnessReader
from usecases import fairness as usecase
from usecases.fairness import cohort_flagged, cohort_table, drift_report, model_in_force
from usecases.ports.fairness import ModelReference, ScoredDriver

pytestmark = pytest.mark.unit
DAY_MS = 86_400_000
END_MS = 1_767_225_600_000 + 40 * DAY_MS
WINDOW_DAYS = 30.0
SINCE = datetime.fromtimestamp((END_MS - 5 * DAY_MS) / 1000, UTC)


def _trip(driver: str, n: int, end_ms: int, km: float, braking: int = 0) -> TripSummary:
    return TripSummary(trip_id=uuid.UUID(int=n), driver_id=driver, start_ms=end_ms - 1_800_000, end_ms=end_ms,
                       distance_m=km * 1000, duration_s=1_800.0, avg_speed_kmh=km * 2, max_speed_kmh=km * 3,
                       harsh_braking_count=braking)


def _driver(driver: str, trips: list[TripSummary], *, hash_of: list[TripSummary] | None = None, score=50.0,
            version="freq-aaaaaaaaaaaa", **kw) -> ScoredDriver:
    features = window_features(trips if hash_of is None else hash_of, END_MS, WINDOW_DAYS)
    fields = {"rate": 0.1, "date_of_birth": None, "timezone": "Europe/Berlin", "premium": 900.0,
              "vehicle_use": "personal", "claims": 0} | kw
    return ScoredDriver(driver_id=driver, scored_at_ms=END_MS, model_version=version,
                        feature_hash=features.feature_hash(), score=score, **fields)


def _loader(reference: ModelReference, asked: list[str]):
    async def load(version: str) -> ModelReference:
        asked.append(version)
        return reference

    return load


A_TRIPS = [_trip("a", 1, END_MS - 2 * DAY_MS, 12.0, 1), _trip("a", 2, END_MS, 30.0),
           _trip("a", 3, END_MS - 60 * DAY_MS, 500.0, 9), _trip("a", 4, END_MS + DAY_MS, 500.0, 9)]  # out of window
B_TRIPS = [_trip("b", 5, END_MS - DAY_MS, 8.0)]


def _a_inputs() -> np.ndarray:
    return raw_inputs(window_features(A_TRIPS, END_MS, WINDOW_DAYS).to_vector()[np.newaxis, :])


async def test_inputs_come_from_each_scores_window_and_only_when_they_hash_to_what_the_score_recorded():
    a = _driver("a", A_TRIPS)
    stale = _driver("b", B_TRIPS, hash_of=[_trip("b", 6, END_MS - DAY_MS, 99.0)])  # its trips changed since
    reader = InMemoryFairnessReader([a, stale], {"a": A_TRIPS, "b": B_TRIPS})
    reference = ModelReference("freq-aaaaaaaaaaaa", reference_bins(MODEL_INPUTS, np.vstack([_a_inputs()] * 3)))
    asked: list[str] = []
    report = await drift_report(reader, _loader(reference, asked), await reader.scored_drivers(SINCE), WINDOW_DAYS)
    assert (report.drivers, report.inputs_drivers, asked) == (2, 1, ["freq-aaaaaaaaaaaa"])
    assert [t.name for t in report.inputs] == list(MODEL_INPUTS)
    assert all(t.psi == 0.0 for t in report.inputs), "driver a alone, against a reference of driver a"
    assert "1 of 2 drivers' recomputed features no longer hash" in report.note
    assert report.score == psi_table(SCORE_BINS, [50.0, 50.0])


async def test_inputs_that_moved_away_from_training_show_drift():
    reader = InMemoryFairnessReader([_driver("a", A_TRIPS)], {"a": A_TRIPS})
    far = _a_inputs() * 10 + 1.0
    reference = ModelReference("freq-aaaaaaaaaaaa", reference_bins(MODEL_INPUTS, np.vstack([far] * 3)))
    report = await drift_report(reader, _loader(reference, []), await reader.scored_drivers(SINCE), WINDOW_DAYS)
    by_name = {t.name: t.psi for t in report.inputs}
    assert by_name["annual_km"] > 0.2 and by_name["km_per_trip"] > 0.2 and report.note is None


async def test_without_a_reference_the_inputs_are_empty_and_the_note_says_why():
    reader = InMemoryFairnessReader([_driver("a", A_TRIPS)], {"a": A_TRIPS})
    reference = ModelReference("freq-aaaaaaaaaaaa", None, "model freq-aaaaaaaaaaaa was trained before …")
    report = await drift_report(reader, _loader(reference, []), await reader.scored_drivers(SINCE), WINDOW_DAYS)
    assert report.inputs == () and report.note == reference.note and report.score.psi is not None
    assert reader.trip_calls == 0


async def test_an_empty_window_reads_no_artifact_and_has_no_psi():
    asked: list[str] = []
    report = await drift_report(InMemoryFairnessReader(), _loader(ModelReference(None, None), asked), [], 30.0)
    assert (report.drivers, report.score.psi, report.inputs, asked) == (0, None, (), [])
    assert "no driver" in report.note


async def test_score_windows_load_in_chunks(monkeypatch):
    monkeypatch.setattr(usecase, "TRIP_CHUNK", 2)
    drivers = [_driver(f"d{i}", []) for i in range(5)]
    reader = InMemoryFairnessReader(drivers)
    reference = ModelReference("v", reference_bins(MODEL_INPUTS, np.zeros((3, len(MODEL_INPUTS)))))
    report = await drift_report(reader, _loader(reference, []), await reader.scored_drivers(SINCE), WINDOW_DAYS)
    assert reader.trip_calls == 3 and report.inputs_drivers == 5


def test_the_model_in_force_is_the_version_most_latest_scores_carry():
    drivers = [_driver(d, [], version=v) for d, v in [("a", "freq-1"), ("b", "freq-2"), ("c", "freq-2")]]
    assert model_in_force(drivers) == "freq-2"
    assert model_in_force(drivers[:2]) == "freq-2"  # a tie: the greatest name, whatever the order
    assert model_in_force(drivers[1::-1]) == "freq-2"


def test_cohorts_are_age_band_region_and_vehicle_use_with_unknown_for_no_policy():
    drivers = [_driver("a", [], score=20.0, vehicle_use="rideshare", date_of_birth=date(2004, 6, 1)),
               _driver("b", [], score=60.0, vehicle_use=None, premium=None, timezone="UTC")]
    stats = {(s.dimension, s.cohort): s for s in cohort_table(drivers, date(2026, 12, 1))}
    assert set(stats) == {("age_band", "<25"), ("age_band", "unknown"), ("region", "Europe"), ("region", "other"),
                          ("vehicle_use", "rideshare"), ("vehicle_use", "unknown")}
    rideshare = stats[("vehicle_use", "rideshare")]
    assert rideshare.score_ratio == pytest.approx(0.5) and rideshare.premium_ratio == pytest.approx(1.0)
    assert cohort_flagged(rideshare, 0.8, 1.25) and not cohort_flagged(rideshare, 0.5, 1.25)


def test_a_reference_needs_one_share_more_than_edges():
    with pytest.raises(ValueError, match="2 edges need 3 proportions"):
        ReferenceBins("x", (1.0, 2.0), (0.5, 0.5))
