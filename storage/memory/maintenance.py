"""InMemoryMaintenance: the MaintenanceStore fake for unit tests (usecases/ports/maintenance.py).

One lock per instance, shared by handlers given the same instance (the race tests). `fail` makes a task raise.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from domain.maintenance import LastRun, MaintenanceTask, PartitionStats, RunOutcome
from storage.memory.fairness import InMemoryFairnessReader
from usecases.ports.fairness import FairnessReader, ModelReference
from usecases.ports.maintenance import RelationSize, UnusedIndex


@dataclass
class RecordedRun:
    task: MaintenanceTask
    started_at: datetime
    finished_at: datetime | None = None
    outcome: RunOutcome | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class InMemoryMaintenance:
    stats: list[PartitionStats] = field(default_factory=list)
    relation_sizes: list[RelationSize] = field(default_factory=list)
    unused: list[UnusedIndex] = field(default_factory=list)
    fail: dict[MaintenanceTask, Exception] = field(default_factory=dict)
    work_s: float = 0.0  # each task's work yields this long (lets racing handlers overlap)
    runs: list[RecordedRun] = field(default_factory=list)
    analyzed: list[str] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    reader: InMemoryFairnessReader = field(default_factory=InMemoryFairnessReader)
    references: dict[str, ModelReference] = field(default_factory=dict)
    _locked: bool = False

    @asynccontextmanager
    async def exclusive(self) -> AsyncIterator[bool]:
        held = not self._locked
        self._locked = True
        try:
            yield held
        finally:
            if held:
                self._locked = False

    async def last_runs(self) -> dict[MaintenanceTask, LastRun]:
        last: dict[MaintenanceTask, LastRun] = {}
        for run in self.runs:
            if run.outcome is RunOutcome.SKIPPED:
                continue
            if run.task not in last or run.started_at > last[run.task].started_at:
                last[run.task] = LastRun(run.started_at, run.outcome or RunOutcome.RUNNING)
        return last

    async def begin(self, task: MaintenanceTask, started_at: datetime) -> int:
        self.runs.append(RecordedRun(task, started_at))
        return len(self.runs) - 1

    async def finish(self, run_id: int, finished_at: datetime, outcome: RunOutcome, details: dict[str, Any]) -> None:
        run = self.runs[run_id]
        run.finished_at, run.outcome, run.details = finished_at, outcome, details

    async def record_skipped(self, task: MaintenanceTask, at: datetime, details: dict[str, Any]) -> None:
        self.runs.append(RecordedRun(task, at, at, RunOutcome.SKIPPED, details))

    async def _work(self, task: MaintenanceTask) -> None:
        self.calls.append(task.value)
        await asyncio.sleep(self.work_s)
        if task in self.fail:
            raise self.fail[task]

    async def ensure_partitions(self, now: datetime, retention_months: int, ahead_months: int) -> list[str]:
        await self._work(MaintenanceTask.PARTITIONS)
        return []

    async def retain(self, now: datetime, retention_months: int) -> dict[str, Any]:
        await self._work(MaintenanceTask.RETENTION)
        return {"archived": [], "skipped": []}

    async def partition_stats(self) -> list[PartitionStats]:
        await self._work(MaintenanceTask.ANALYZE)
        return list(self.stats)

    async def analyze(self, partitions: Sequence[str]) -> None:
        self.analyzed.extend(partitions)

    async def sizes(self) -> list[RelationSize]:
        await self._work(MaintenanceTask.REPORT)
        return list(self.relation_sizes)

    async def unused_indexes(self) -> list[UnusedIndex]:
        return list(self.unused)

    def fairness(self) -> FairnessReader:
        self.calls.append(MaintenanceTask.DRIFT.value)
        if MaintenanceTask.DRIFT in self.fail:
            raise self.fail[MaintenanceTask.DRIFT]
        return self.reader

    async def model_reference(self, model_version: str) -> ModelReference:
        return self.references.get(model_version) or ModelReference(model_version, None, "no such artifact (fake)")
