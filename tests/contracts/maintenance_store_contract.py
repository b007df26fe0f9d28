"""The MaintenanceStore contract (usecases.ports.maintenance): run on InMemoryMaintenance in the unit suite and on
storage.postgres.maintenance.PostgresMaintenance in the integration suite. Each check gets two stores of ONE
database, as two runners (actors, or an actor and the CLI) would hold them, and an empty run history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.maintenance import LastRun, MaintenanceTask, RunOutcome
from usecases.ports.maintenance import MaintenanceStore

T0 = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)


async def only_one_runner_holds_the_lock_at_a_time(a: MaintenanceStore, b: MaintenanceStore) -> None:
    async with a.exclusive() as held_by_a, b.exclusive() as held_by_b:
        assert (held_by_a, held_by_b) == (True, False)
    async with b.exclusive() as held_after:
        assert held_after


async def last_runs_are_each_tasks_newest_run_that_was_not_skipped(a: MaintenanceStore, b: MaintenanceStore) -> None:
    assert await a.last_runs() == {}
    first = await a.begin(MaintenanceTask.RETENTION, T0)
    await a.finish(first, T0 + timedelta(seconds=5), RunOutcome.OK, {"archived": []})
    await b.record_skipped(MaintenanceTask.RETENTION, T0 + timedelta(seconds=1), {"reason": "busy"})
    failed = await b.begin(MaintenanceTask.ANALYZE, T0)
    await b.finish(failed, T0 + timedelta(seconds=1), RunOutcome.FAILED, {"error": "x"})
    await b.begin(MaintenanceTask.REPORT, T0 + timedelta(seconds=2))  # never finished: its runner died
    assert await a.last_runs() == {
        MaintenanceTask.RETENTION: LastRun(T0, RunOutcome.OK),
        MaintenanceTask.ANALYZE: LastRun(T0, RunOutcome.FAILED),
        MaintenanceTask.REPORT: LastRun(T0 + timedelta(seconds=2), RunOutcome.RUNNING),
    }


CONTRACT = [only_one_runner_holds_the_lock_at_a_time, last_runs_are_each_tasks_newest_run_that_was_not_skipped]
