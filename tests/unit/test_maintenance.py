"""Maintenance decisions and handlers over the in-memory store (no database, no Ray)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from domain.fairness import reference_bins
from domain.maintenance import (
    AnalyzeRules,
    LastRun,
    MaintenanceSchedule,
    MaintenanceTask,
    PartitionStats,
    RunOutcome,
    due_tasks,
    partitions_to_analyze,
)
from domain.risk_model.inputs import MODEL_INPUTS
from domain.scoring import window_features
from storage.memory.fairness import InMemoryFairnessReader
from storage.memory.maintenance import InMemoryMaintenance
from tests.contracts import maintenance_store_contract as maintenance_store
from usecases.fairness import UNKNOWN, DriftRules
from usecases.maintenance import MaintenanceRules, maintenance_rules, run_due, run_task
from usecases.ports.fairness import ModelReference, ScoredDriver
from usecases.ports.maintenance import RelationSize, UnusedIndex

pytestmark = pytest.mark.unit

T0 = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
EVERY = {MaintenanceTask.PARTITIONS: 3600, MaintenanceTask.RETENTION: 86400, MaintenanceTask.ANALYZE: 600,
         MaintenanceTask.REPORT: 300, MaintenanceTask.DRIFT: 3600}
RULES = MaintenanceRules(MaintenanceSchedule(EVERY), retention_months=12, ahead_months=3)


def _clock(start: datetime = T0):
    ticks = iter(start + timedelta(milliseconds=i) for i in range(1_000_000))
    return lambda: next(ticks)


def _stats(partition="telematics_events_y2026m12", live=0, changed=0, analyzed_at=None, rows_at=None):
    return PartitionStats("telematics_events", partition, live, changed, analyzed_at, rows_at)


def test_every_task_is_due_when_none_ever_ran():
    assert due_tasks(MaintenanceSchedule(EVERY), {}, T0) == list(MaintenanceTask)


def test_a_task_is_due_again_once_its_interval_has_passed():
    last = {t: LastRun(T0, RunOutcome.OK) for t in MaintenanceTask}
    schedule = MaintenanceSchedule(EVERY)
    assert due_tasks(schedule, last, T0 + timedelta(seconds=299)) == []
    assert due_tasks(schedule, last, T0 + timedelta(seconds=600)) == [MaintenanceTask.ANALYZE, MaintenanceTask.REPORT]


def test_a_failed_or_abandoned_run_is_retried_sooner_than_a_whole_interval():
    schedule = MaintenanceSchedule(EVERY, retry_after_s=120)
    last = {t: LastRun(T0, RunOutcome.OK) for t in MaintenanceTask}
    last[MaintenanceTask.RETENTION] = LastRun(T0, RunOutcome.FAILED)
    last[MaintenanceTask.PARTITIONS] = LastRun(T0, RunOutcome.RUNNING)  # its actor died mid-run
    assert due_tasks(schedule, last, T0 + timedelta(seconds=119)) == []
    assert due_tasks(schedule, last, T0 + timedelta(seconds=120)) == [MaintenanceTask.PARTITIONS,
                                                                      MaintenanceTask.RETENTION]


def test_a_schedule_without_a_positive_interval_for_every_task_is_refused():
    with pytest.raises(ValueError, match="retention"):
        MaintenanceSchedule({**EVERY, MaintenanceTask.RETENTION: 0})


def test_new_partitions_are_analyzed_once_rows_arrived_and_empty_ones_are_left_alone():
    chosen = partitions_to_analyze([_stats("a", live=10), _stats("b", live=0)], AnalyzeRules())
    assert chosen == ["a"]


def test_recently_filled_partitions_are_analyzed_past_the_larger_threshold():
    rules = AnalyzeRules(min_changed_rows=1_000, changed_fraction=0.1)
    stats = [
        _stats("small_changed", live=5_000, changed=1_000, analyzed_at=T0, rows_at=4_000),
        _stats("small_quiet", live=5_000, changed=999, analyzed_at=T0, rows_at=4_000),
        _stats("big_quiet", live=1_000_000, changed=50_000, analyzed_at=T0, rows_at=1_000_000),
        _stats("big_filled", live=1_200_000, changed=200_000, analyzed_at=T0, rows_at=1_000_000),
    ]
    assert partitions_to_analyze(stats, rules) == ["big_filled", "small_changed"]


def test_a_run_is_recorded_with_its_outcome_and_details():
    store = InMemoryMaintenance(stats=[_stats("p1", live=3)])
    result = asyncio.run(run_task(store, MaintenanceTask.ANALYZE, RULES, _clock()))
    assert result.outcome is RunOutcome.OK and store.analyzed == ["p1"]
    [run] = store.runs
    assert (run.task, run.outcome, run.details) == (MaintenanceTask.ANALYZE, RunOutcome.OK, {"analyzed": ["p1"]})
    assert run.finished_at > run.started_at


def test_a_failing_task_is_recorded_as_failed_and_the_next_task_still_runs():
    store = InMemoryMaintenance(fail={MaintenanceTask.RETENTION: OSError("disk full")})
    results = asyncio.run(run_due(store, RULES, _clock()))
    assert [r.outcome for r in results] == [RunOutcome.OK, RunOutcome.FAILED, RunOutcome.OK, RunOutcome.OK,
                                            RunOutcome.OK]
    assert store.runs[1].details == {"error": "OSError: disk full"}


def test_run_due_runs_only_what_is_due_and_skipped_runs_do_not_count_as_runs():
    store = InMemoryMaintenance()
    asyncio.run(run_due(store, RULES, _clock()))
    store.runs.append(store.runs[0].__class__(MaintenanceTask.REPORT, T0 + timedelta(seconds=299),
                                              T0 + timedelta(seconds=299), RunOutcome.SKIPPED))
    later = asyncio.run(run_due(store, RULES, _clock(T0 + timedelta(seconds=301))))
    assert [r.task for r in later] == [MaintenanceTask.REPORT]


def test_two_handlers_racing_never_run_at_once_and_the_loser_records_a_skip():
    store = InMemoryMaintenance(work_s=0.05)

    async def race():
        return await asyncio.gather(*(run_task(store, MaintenanceTask.PARTITIONS, RULES, _clock()) for _ in range(2)))

    outcomes = sorted(r.outcome.value for r in asyncio.run(race()))
    assert outcomes == ["ok", "skipped"] and store.calls == ["partitions"]


def test_the_report_carries_sizes_and_unused_indexes():
    store = InMemoryMaintenance(
        relation_sizes=[RelationSize("table", "trips", None, 8192),
                        RelationSize("partition", "telematics_events_y2026m12", "telematics_events", 4096)],
        unused=[UnusedIndex("trips", "trips_by_x", 16384)],
    )
    result = asyncio.run(run_task(store, MaintenanceTask.REPORT, RULES, _clock()))
    assert result.details == {"tables": {"trips": 8192}, "partitions": 1, "unused_indexes": ["trips.trips_by_x"]}
    assert result.report is not None and result.report.unused_indexes[0].size_bytes == 16384


def test_rules_come_from_settings():
    from config.settings import Settings

    rules = maintenance_rules(Settings(maintenance_analyze_every_s=42, partitions_ahead_months=5))
    assert rules.schedule.every_s[MaintenanceTask.ANALYZE] == 42 and rules.ahead_months == 5


@pytest.mark.parametrize("check", maintenance_store.CONTRACT, ids=lambda c: c.__name__)
def test_the_in_memory_store_keeps_the_maintenance_store_contract(check):
    store = InMemoryMaintenance()  # one instance is one database: two runners share it
    asyncio.run(check(store, store))


def _scored(driver: str, score: float, premium: float, use: str) -> ScoredDriver:
    return ScoredDriver(driver_id=driver, scored_at_ms=int(T0.timestamp() * 1000) - 3_600_000, model_version="freq-1",
                        feature_hash=window_features([], 0, 1.0).feature_hash(), score=score, rate=0.1,
                        date_of_birth=None, timezone="Europe/Paris", premium=premium, vehicle_use=use, claims=0)


def test_the_drift_task_exports_psi_and_cohort_ratios_and_unknown_below_the_minimum_counts():
    drivers = [_scored(f"d{i}", 95.0, 900.0, "personal") for i in range(4)] + [_scored("r", 95.0, 1800.0, "rideshare")]
    bins = reference_bins(MODEL_INPUTS, np.ones((10, len(MODEL_INPUTS))))  # trained on drivers who all drove
    store = InMemoryMaintenance(reader=InMemoryFairnessReader(drivers),
                                references={"freq-1": ModelReference("freq-1", bins)})
    rules = MaintenanceRules(MaintenanceSchedule(EVERY), 12, 3, drift=DriftRules(min_drivers=5, cohort_min_drivers=1))
    result = asyncio.run(run_task(store, MaintenanceTask.DRIFT, rules, _clock()))
    gauges = result.gauges
    assert result.outcome is RunOutcome.OK and gauges.drivers == 5 and gauges.score_psi > 0.2
    assert set(gauges.feature_psi) == set(MODEL_INPUTS) and all(v > 0.2 for v in gauges.feature_psi.values())
    assert gauges.cohort_premium_ratio[("vehicle_use", "rideshare")] == pytest.approx(1800 / 1080)
    assert result.details["cohorts_out_of_band"] == ["vehicle_use=rideshare"]
    assert result.details["drifting"] == sorted(MODEL_INPUTS) and result.details["model_version"] == "freq-1"

    few = MaintenanceRules(MaintenanceSchedule(EVERY), 12, 3, drift=DriftRules(min_drivers=6, cohort_min_drivers=2))
    sparse = asyncio.run(run_task(store, MaintenanceTask.DRIFT, few, _clock())).gauges
    assert sparse.score_psi == UNKNOWN and set(sparse.feature_psi.values()) == {UNKNOWN}
    assert sparse.cohort_premium_ratio[("vehicle_use", "rideshare")] == UNKNOWN
    assert sparse.cohort_premium_ratio[("vehicle_use", "personal")] == pytest.approx(900 / 1080)


def test_a_drift_run_without_a_reference_exports_unknown_inputs_and_says_why():
    store = InMemoryMaintenance(reader=InMemoryFairnessReader([_scored("a", 50.0, 900.0, "commute")]))
    rules = MaintenanceRules(MaintenanceSchedule(EVERY), 12, 3, drift=DriftRules(min_drivers=1))
    result = asyncio.run(run_task(store, MaintenanceTask.DRIFT, rules, _clock()))
    assert result.outcome is RunOutcome.OK and "no such artifact" in result.details["note"]
    assert set(result.gauges.feature_psi.values()) == {UNKNOWN} and result.gauges.score_psi >= 0
