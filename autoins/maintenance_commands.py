"""`autoins maintenance run [--task …]`: the maintenance actor's tasks once, by hand, in this process.

Same handler, lock and `maintenance_runs` records as the actor (usecases/maintenance.py): a run while the
actor works is recorded as skipped and exits 1, so a script can tell "done" from "not done".
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from autoins.cli_support import console, settings_from_env, user_errors
from autoins.db_commands import _run_db, connected, require_current_schema
from autoins.errors import UserFacingError
from domain.maintenance import MaintenanceTask, RunOutcome
from storage.files.model_artifacts import reference_loader
from storage.postgres.maintenance import PostgresMaintenance
from usecases.maintenance import RunResult, maintenance_rules, run_tasks

maintenance_app = typer.Typer(no_args_is_help=True)
_STYLE = {RunOutcome.OK: "green", RunOutcome.FAILED: "red", RunOutcome.SKIPPED: "yellow"}


def _now() -> datetime:
    return datetime.now(UTC)


@maintenance_app.command("run")
@user_errors
def maintenance_run(
    task: Annotated[
        list[MaintenanceTask] | None,
        typer.Option("--task", help="Run only this task (repeatable); default: all, in order.", case_sensitive=False),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print each run as one JSON line.")] = False,
) -> None:
    """Run maintenance once: partitions ahead, retention (archive, verify, drop), ANALYZE, size report, drift."""
    settings = settings_from_env()
    tasks = list(dict.fromkeys(task)) if task else list(MaintenanceTask)
    tasks.sort(key=list(MaintenanceTask).index)

    require_current_schema(settings)  # names any pending migration (maintenance_runs is 0011's)

    async def body() -> list[RunResult]:
        async with connected(settings) as conn:
            store = PostgresMaintenance(conn, settings.archive_dir.resolve(), reference_loader(
                Path(settings.models_dir).resolve(), settings.model_signing_key))
            return await run_tasks(store, tasks, maintenance_rules(settings), _now)

    results = _run_db(body)
    if as_json:
        for r in results:
            console.print_json(json.dumps({"task": r.task.value, "outcome": r.outcome.value, "details": r.details}))
    else:
        table = Table("task", "outcome", "details")
        for r in results:
            style = _STYLE[r.outcome]
            table.add_row(r.task.value, f"[{style}]{r.outcome.value}[/{style}]", escape(_brief(r)))
        console.print(table)
    bad = [r for r in results if r.outcome is not RunOutcome.OK]
    if bad:
        raise UserFacingError(", ".join(f"{r.task.value} {r.outcome.value}" for r in bad))


def _brief(result: RunResult) -> str:
    d = result.details
    if "error" in d or "reason" in d:
        return str(d.get("error") or d.get("reason"))
    if result.task is MaintenanceTask.PARTITIONS:
        return f"created {len(d['created'])}: {', '.join(d['created'])}" if d["created"] else "all present"
    if result.task is MaintenanceTask.RETENTION:
        archived = ", ".join(a["partition"] for a in d["archived"])
        dropped = f"archived and dropped {len(d['archived'])}" + (f": {archived}" if archived else "")
        return f"cutoff {d['cutoff']}; {dropped}"
    if result.task is MaintenanceTask.ANALYZE:
        return f"analyzed {len(d['analyzed'])}" + (f": {', '.join(d['analyzed'])}" if d["analyzed"] else "")
    if result.task is MaintenanceTask.DRIFT:
        psi = "none" if d["score_psi"] is None else f"{d['score_psi']:.3f}"
        return (f"{d['drivers']} drivers, score PSI {psi}, drifting: {', '.join(d['drifting']) or 'none'}, "
                f"cohorts out of band: {', '.join(d['cohorts_out_of_band']) or 'none'}")
    unused = d["unused_indexes"]
    return f"{len(d['tables'])} tables, {d['partitions']} partitions, {len(unused)} unused indexes"
