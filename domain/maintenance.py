"""Maintenance decisions (issue 14 item 4), pure: which task is due, which partitions want ANALYZE.

No I/O, no clock: `now` and what the database reported come in as arguments. The actor and
`autoins maintenance run` act on the answers (usecases/maintenance.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class MaintenanceTask(StrEnum):
    """The plan's §13 database chores, in the order a full run does them (partitions before they fill)."""

    PARTITIONS = "partitions"  # create PARTITIONS_AHEAD_MONTHS of partitions ahead
    RETENTION = "retention"  # detach, archive, verify and drop months past RETENTION_MONTHS
    ANALYZE = "analyze"  # ANALYZE new and recently filled partitions
    REPORT = "report"  # table and partition sizes, unused indexes, as metrics
    DRIFT = "drift"  # PSI of the score and model inputs, cohort ratios, as gauges (usecases/fairness.py)


class RunOutcome(StrEnum):
    RUNNING = "running"  # started, not finished (or its process died)
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"  # another run held the maintenance lock: nothing was done


@dataclass(frozen=True, slots=True)
class LastRun:
    """A task's newest run that was not skipped."""

    started_at: datetime
    outcome: RunOutcome


@dataclass(frozen=True, slots=True)
class MaintenanceSchedule:
    """Seconds between two starts of each task; a task that never ran is due at once. A run that failed, or
    is still `running` after `retry_after_s` (its actor died under it), is retried after `retry_after_s`
    rather than a whole interval: a retention that met a busy table should not wait a day."""

    every_s: Mapping[MaintenanceTask, float]
    retry_after_s: float = 600.0

    def __post_init__(self) -> None:
        for task in MaintenanceTask:
            if self.every_s.get(task, 0) <= 0:
                raise ValueError(f"maintenance interval of {task.value} must be > 0 s, not {self.every_s.get(task)}")


def due_tasks(
    schedule: MaintenanceSchedule, last_runs: Mapping[MaintenanceTask, LastRun], now: datetime
) -> list[MaintenanceTask]:
    """Tasks due at `now`, in `MaintenanceTask` order. `last_runs` leaves out skipped runs (they did nothing)."""
    due = []
    for task in MaintenanceTask:
        last = last_runs.get(task)
        if last is None:
            due.append(task)
            continue
        wait_s = schedule.every_s[task] if last.outcome is RunOutcome.OK else min(
            schedule.every_s[task], schedule.retry_after_s)
        if now - last.started_at >= timedelta(seconds=wait_s):
            due.append(task)
    return due


@dataclass(frozen=True, slots=True)
class AnalyzeRules:
    """A partition is re-analyzed once this many rows changed since its last ANALYZE (the larger bound wins).

    PostgreSQL's autovacuum never analyzes a partitioned parent and analyzes a partition only after 10 % +
    50 rows changed: a month filling at 10k readings/s is planned on stale counts in between (BENCHMARKS.md
    records a plan flip on unanalyzed partitions)."""

    min_changed_rows: int = 1_000
    changed_fraction: float = 0.1


@dataclass(frozen=True, slots=True)
class PartitionStats:
    """What pg_stat_user_tables says of one partition. `analyzed_at`: the later of manual and auto ANALYZE."""

    table: str
    partition: str
    live_rows: int
    changed_since_analyze: int
    analyzed_at: datetime | None
    rows_at_analyze: int | None  # pg_class.reltuples; None when never analyzed


def partitions_to_analyze(stats: Iterable[PartitionStats], rules: AnalyzeRules) -> list[str]:
    """Partitions that are new (never analyzed, rows arrived) or recently filled (changes past the threshold).

    An empty partition is left alone: ANALYZE would record "0 rows", and a month just created is planned better
    on PostgreSQL's default for a never-analyzed table than on a count that is wrong within seconds."""
    chosen: list[str] = []
    for s in stats:
        if s.analyzed_at is None or s.rows_at_analyze is None:
            if s.live_rows > 0 or s.changed_since_analyze > 0:
                chosen.append(s.partition)
            continue
        threshold = max(rules.min_changed_rows, rules.changed_fraction * max(s.rows_at_analyze, 0))
        if s.changed_since_analyze >= threshold and s.changed_since_analyze > 0:
            chosen.append(s.partition)
    return sorted(chosen)
