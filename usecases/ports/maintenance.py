"""MaintenanceStore: what the maintenance handler asks of the database (usecases/maintenance.py).

Real adapter: storage/postgres/maintenance.py (one connection, a session advisory lock); fake:
storage/memory/maintenance.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from domain.maintenance import LastRun, MaintenanceTask, PartitionStats, RunOutcome
from usecases.ports.fairness import FairnessReader, ModelReference


@dataclass(frozen=True, slots=True)
class RelationSize:
    """`kind`: "table" (a partitioned table counts its partitions) or "partition" (then `parent` is its table)."""

    kind: str
    name: str
    parent: str | None
    size_bytes: int


@dataclass(frozen=True, slots=True)
class UnusedIndex:
    """An index never scanned since statistics were last reset (pg_stat_user_indexes.idx_scan = 0)."""

    table: str
    index: str
    size_bytes: int


class MaintenanceStore(Protocol):
    def exclusive(self) -> AbstractAsyncContextManager[bool]:
        """Try the database-wide maintenance lock without waiting: yields True when held (released on exit)."""
        ...

    async def last_runs(self) -> dict[MaintenanceTask, LastRun]:
        """Per task, its newest run that was not skipped."""
        ...

    async def begin(self, task: MaintenanceTask, started_at: datetime) -> int:
        """Record a run as started; returns its id."""
        ...

    async def finish(self, run_id: int, finished_at: datetime, outcome: RunOutcome, details: dict[str, Any]) -> None:
        ...

    async def record_skipped(self, task: MaintenanceTask, at: datetime, details: dict[str, Any]) -> None:
        ...

    async def ensure_partitions(self, now: datetime, retention_months: int, ahead_months: int) -> list[str]:
        """Create the missing partitions of the window; names created."""
        ...

    async def retain(self, now: datetime, retention_months: int) -> dict[str, Any]:
        """The existing retention (detach, archive, verify, drop); what it did, JSON-ready."""
        ...

    async def partition_stats(self) -> list[PartitionStats]:
        ...

    async def analyze(self, partitions: Sequence[str]) -> None:
        ...

    async def sizes(self) -> list[RelationSize]:
        ...

    async def unused_indexes(self) -> list[UnusedIndex]:
        ...

    def fairness(self) -> FairnessReader:
        """The fairness and drift reads, on the run's connection."""
        ...

    async def model_reference(self, model_version: str) -> ModelReference:
        """The inputs' training bins of that artifact, or a reference with a note (never raises)."""
        ...
