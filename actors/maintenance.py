"""MaintenanceActor: runs the database chores on the schedule of settings (usecases/maintenance.py).

A thin shell: every `maintenance_tick_s` it opens one connection, asks the handler to run what is due (the
schedule reads `maintenance_runs`, so a restarted actor neither repeats nor forgets a task), records metrics
and closes the connection. Created, probed and stopped by the PipelineSupervisor like every pipeline actor
(detached, named `<prefix>maintenance`). Two of them never work at once: the handler's advisory lock.
"""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import ray

from config.logging import configure_logging, get_logger
from domain.maintenance import MaintenanceTask
from storage.files.model_artifacts import reference_loader
from storage.postgres.maintenance import PostgresMaintenance
from storage.postgres.pool import connect
from usecases.maintenance import RunResult, maintenance_rules, run_due, run_tasks


def _now() -> datetime:
    return datetime.now(UTC)


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=0)
class MaintenanceActor:
    def __init__(self, settings, name: str = "maintenance") -> None:
        self.settings = settings
        self.rules = maintenance_rules(settings)
        self.load_reference = reference_loader(Path(settings.models_dir).resolve(), settings.model_signing_key)
        configure_logging(settings.log_level, json=settings.log_json)
        self.log = get_logger("maintenance").bind(actor=name, pid=os.getpid())
        self.metrics = None  # built on first use, inside the actor
        self.running = False
        self.stopping = False
        self.busy = False
        self.ticks = 0
        self.last: list[dict] = []
        self.last_error: str | None = None

    async def run(self) -> None:
        """The schedule loop (the supervisor starts it and restarts it if it ends)."""
        if self.running:
            return
        self.running = True
        self.log.info("maintenance_started", tick_s=self.settings.maintenance_tick_s,
                      archive_dir=str(self.settings.archive_dir.resolve()))
        try:
            while not self.stopping:
                started = time.monotonic()
                try:
                    await self._once(None)
                except Exception as error:  # the database away: log and try again next tick
                    self.last_error = repr(error)[:300]
                    self.log.warning("maintenance_tick_failed", error=self.last_error)
                self.ticks += 1
                await self._sleep(self.settings.maintenance_tick_s - (time.monotonic() - started))
        finally:
            self.running = False

    async def run_once(self, tasks: list[str] | None = None) -> list[dict]:
        """Run the named tasks now (every task when None), due or not; what each run recorded."""
        return await self._once([MaintenanceTask(t) for t in tasks or [t.value for t in MaintenanceTask]])

    async def stats(self) -> dict:
        return {"pid": os.getpid(), "node": ray.get_runtime_context().get_node_id(), "running": self.running,
                "busy": self.busy, "ticks": self.ticks, "last": self.last, "last_error": self.last_error}

    async def shutdown(self, timeout_s: float = 30.0) -> None:
        """Stop the loop; let a run in progress finish (retention resumes a cut run anyway, but cleanly is better)."""
        self.stopping = True
        deadline = time.monotonic() + timeout_s
        while self.busy and time.monotonic() < deadline:
            await asyncio.sleep(0.05)

    async def _once(self, tasks: list[MaintenanceTask] | None) -> list[dict]:
        self.busy = True
        try:
            conn = await connect(self.settings, application_name="autoins-maintenance")
            try:
                store = PostgresMaintenance(conn, self.settings.archive_dir.resolve(), self.load_reference)
                if tasks is None:
                    results = await run_due(store, self.rules, _now)
                else:
                    results = await run_tasks(store, tasks, self.rules, _now)
            finally:
                await conn.close()
        finally:
            self.busy = False
        for result in results:
            self._record(result)
        if results:
            self.last = [_summary(r) for r in results]
        return [_summary(r) for r in results]

    def _record(self, result: RunResult) -> None:
        log = self.log.warning if result.outcome.value == "failed" else self.log.info
        log("maintenance_run", task=result.task.value, outcome=result.outcome.value, details=result.details)
        if self.metrics is None:
            from actors.maintenance_metrics import MaintenanceMetrics

            self.metrics = MaintenanceMetrics()
        self.metrics.record(result, time.time())

    async def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + max(0.0, seconds)
        while not self.stopping and time.monotonic() < deadline:
            await asyncio.sleep(min(0.5, deadline - time.monotonic()))


def _summary(result: RunResult) -> dict:
    return {"task": result.task.value, "outcome": result.outcome.value, "details": result.details}
