"""Maintenance handlers (issue 14 item 4): run one task, or every task that is due, over a MaintenanceStore.

Each run takes the database-wide maintenance lock first; without it the run is recorded as skipped and does
nothing, so two actors (or an actor and `autoins maintenance run`) never run maintenance at once. A task that
raises is recorded as failed with its error and the next task still runs. The actor is a thin shell over
`run_due`; the CLI calls `run_task`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from config.settings import Settings
from domain.maintenance import (
    AnalyzeRules,
    MaintenanceSchedule,
    MaintenanceTask,
    RunOutcome,
    due_tasks,
    partitions_to_analyze,
)
from usecases.fairness import UNKNOWN, DriftGauges, DriftRules, cohort_table, drift_gauges, drift_report
from usecases.ports.maintenance import MaintenanceStore, RelationSize, UnusedIndex

Now = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class MaintenanceRules:
    """Everything a run decides with; built once from settings (`config.rules.maintenance_rules`)."""

    schedule: MaintenanceSchedule
    retention_months: int
    ahead_months: int
    analyze: AnalyzeRules = field(default_factory=AnalyzeRules)
    drift: DriftRules = field(default_factory=DriftRules)


def maintenance_rules(settings: Settings) -> MaintenanceRules:
    """The schedule, thresholds and partition window these settings configure (docs/OPERATIONS.md)."""
    return MaintenanceRules(
        schedule=MaintenanceSchedule({
            MaintenanceTask.PARTITIONS: settings.maintenance_partitions_every_s,
            MaintenanceTask.RETENTION: settings.maintenance_retention_every_s,
            MaintenanceTask.ANALYZE: settings.maintenance_analyze_every_s,
            MaintenanceTask.REPORT: settings.maintenance_report_every_s,
            MaintenanceTask.DRIFT: settings.maintenance_drift_every_s,
        }, retry_after_s=settings.maintenance_retry_after_s),
        retention_months=settings.retention_months,
        ahead_months=settings.partitions_ahead_months,
        analyze=AnalyzeRules(settings.maintenance_analyze_min_changed_rows,
                             settings.maintenance_analyze_changed_fraction),
        drift=DriftRules(window_days=settings.drift_window_days, scoring_window_days=settings.scoring_window_days,
                         psi_alert=settings.drift_psi_alert, ratio_low=settings.cohort_ratio_low,
                         ratio_high=settings.cohort_ratio_high, min_drivers=settings.drift_min_drivers,
                         cohort_min_drivers=settings.cohort_min_drivers),
    )


@dataclass(frozen=True, slots=True)
class RunResult:
    """One run. `report` is set by a successful REPORT run, `gauges` by a DRIFT run (the actor sets them)."""

    task: MaintenanceTask
    outcome: RunOutcome
    details: dict[str, Any]
    report: MaintenanceReport | None = None
    gauges: DriftGauges | None = None


@dataclass(frozen=True, slots=True)
class MaintenanceReport:
    sizes: tuple[RelationSize, ...]
    unused_indexes: tuple[UnusedIndex, ...]


async def run_task(store: MaintenanceStore, task: MaintenanceTask, rules: MaintenanceRules, now: Now) -> RunResult:
    """Run one task under the maintenance lock and record it (ok / failed / skipped)."""
    async with store.exclusive() as held:
        if not held:
            details = {"reason": "another maintenance run holds the lock"}
            await store.record_skipped(task, now(), details)
            return RunResult(task, RunOutcome.SKIPPED, details)
        run_id = await store.begin(task, now())
        outcome, details, report, gauges = RunOutcome.FAILED, {}, None, None
        try:
            if task is MaintenanceTask.DRIFT:
                details, gauges = await _drift(store, rules.drift, now())
            else:
                details, report = await _perform(store, task, rules, now())
            outcome = RunOutcome.OK
        except Exception as error:  # recorded, not raised: the next task and the next tick still run
            details = {"error": f"{type(error).__name__}: {error}"[:2000]}
        await store.finish(run_id, now(), outcome, details)
        return RunResult(task, outcome, details, report, gauges)


async def run_due(store: MaintenanceStore, rules: MaintenanceRules, now: Now) -> list[RunResult]:
    """Every task that is due (`domain.maintenance.due_tasks`), in task order."""
    due = due_tasks(rules.schedule, await store.last_runs(), now())
    return [await run_task(store, task, rules, now) for task in due]


async def run_tasks(
    store: MaintenanceStore, tasks: Sequence[MaintenanceTask], rules: MaintenanceRules, now: Now
) -> list[RunResult]:
    """The given tasks once each, due or not (by hand: `autoins maintenance run`)."""
    return [await run_task(store, task, rules, now) for task in tasks]


async def _perform(
    store: MaintenanceStore, task: MaintenanceTask, rules: MaintenanceRules, now: datetime
) -> tuple[dict[str, Any], MaintenanceReport | None]:
    if task is MaintenanceTask.PARTITIONS:
        created = await store.ensure_partitions(now, rules.retention_months, rules.ahead_months)
        return {"created": created, "ahead_months": rules.ahead_months}, None
    if task is MaintenanceTask.RETENTION:
        return await store.retain(now, rules.retention_months), None
    if task is MaintenanceTask.ANALYZE:
        chosen = partitions_to_analyze(await store.partition_stats(), rules.analyze)
        await store.analyze(chosen)
        return {"analyzed": chosen}, None
    sizes = tuple(await store.sizes())
    unused = tuple(await store.unused_indexes())
    details = {
        "tables": {s.name: s.size_bytes for s in sizes if s.kind == "table"},
        "partitions": sum(1 for s in sizes if s.kind == "partition"),
        "unused_indexes": [f"{u.table}.{u.index}" for u in unused],
    }
    return details, MaintenanceReport(sizes, unused)


async def _drift(store: MaintenanceStore, rules: DriftRules, now: datetime) -> tuple[dict[str, Any], DriftGauges]:
    """The analytics routes' drift and cohorts over the last `rules.window_days`, turned into gauge values."""
    reader = store.fairness()
    drivers = await reader.scored_drivers(now - timedelta(days=rules.window_days))
    report = await drift_report(reader, store.model_reference, drivers, rules.scoring_window_days)
    gauges = drift_gauges(report, cohort_table(drivers, now.date()), rules)
    details = {"drivers": report.drivers, "inputs_drivers": report.inputs_drivers,
               "model_version": report.model_version, "score_psi": report.score.psi,
               "drifting": sorted(name for name, v in gauges.feature_psi.items() if v > rules.psi_alert),
               "cohorts_out_of_band": sorted(f"{d}={c}" for (d, c), v in gauges.cohort_premium_ratio.items()
                                             if v != UNKNOWN and not rules.ratio_low <= v <= rules.ratio_high),
               "note": report.note}
    return details, gauges
