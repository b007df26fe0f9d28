"""The maintenance actor and `autoins maintenance run` on real PostgreSQL and Ray (issue 14 item 4)."""

from __future__ import annotations

import asyncio
import itertools
import re
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from typer.testing import CliRunner

from domain.partition_calendar import Month, partition_name
from storage.postgres.maintenance import MAINTENANCE_LOCK_KEY, PostgresMaintenance
from storage.postgres.pool import connect
from tests.contracts import maintenance_store_contract as maintenance_store
from tests.integration.fixtures_db import create_migrated_database
from tests.integration.test_partitions import _insert_readings, _spread

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def db_settings(settings, tmp_path: Path):
    url = asyncio.run(create_migrated_database(settings, prefix="autoins_maint"))
    yield settings.with_overrides(database_url=url, archive_dir=tmp_path / "archive")
    from tests.integration.pipeline_support import drop

    drop(url)


def _now_months() -> tuple[Month, Month]:
    """(an old month past the 12-month retention, the current month), by the real clock: the CLI reads it."""
    current = Month.of(datetime.now(UTC))
    return current.plus(-14), current


async def _populate(settings) -> None:
    old, _current = _now_months()
    conn = await connect(settings)
    try:
        await _insert_readings(conn, _spread(old, 5))
        await _insert_readings(conn, [datetime.now(UTC)])
    finally:
        await conn.close()


async def _runs(settings) -> list[asyncpg.Record]:
    conn = await connect(settings)
    try:
        return await conn.fetch("SELECT * FROM maintenance_runs ORDER BY run_id")
    finally:
        await conn.close()


def _cli(settings, *args: str):
    from autoins.cli import app

    env = {"DATABASE_URL": settings.database_url, "ARCHIVE_DIR": str(settings.archive_dir), "LOG_JSON": "false"}
    return CliRunner().invoke(app, ["maintenance", "run", *args], env=env)


@pytest.mark.parametrize("check", maintenance_store.CONTRACT, ids=lambda c: c.__name__)
async def test_the_postgres_store_keeps_the_maintenance_store_contract(db_settings, check):
    first, second = await connect(db_settings), await connect(db_settings)
    try:
        archive = db_settings.archive_dir
        await check(PostgresMaintenance(first, archive), PostgresMaintenance(second, archive))
    finally:
        await first.close()
        await second.close()


def test_one_manual_run_ensures_retires_analyzes_and_reports_and_records_each_task(db_settings):
    asyncio.run(_populate(db_settings))
    old, current = _now_months()
    result = _cli(db_settings, "--json")
    assert result.exit_code == 0, result.output
    runs = asyncio.run(_runs(db_settings))
    assert [(r["task"], r["outcome"]) for r in runs] == [
        ("partitions", "ok"), ("retention", "ok"), ("analyze", "ok"), ("report", "ok"), ("drift", "ok")]
    assert all(r["finished_at"] >= r["started_at"] for r in runs)
    retention = runs[1]["details"]
    assert [a["partition"] for a in retention["archived"]] == [partition_name("telematics_events", old)]
    assert retention["archived"][0]["rows"] == 5
    archive = db_settings.archive_dir / "telematics_events" / f"{partition_name('telematics_events', old)}.csv.gz"
    assert archive.exists()
    assert partition_name("telematics_events", current) in runs[2]["details"]["analyzed"]
    report = runs[3]["details"]
    assert report["tables"]["telematics_events"] > 0
    # nothing here queried by driver: the index is unused, counted once for all its monthly partitions
    assert "telematics_events.telematics_events_driver_id_ts_idx" in report["unused_indexes"]
    assert not [name for name in report["unused_indexes"] if "_y20" in name]
    assert runs[4]["details"]["drivers"] == 0 and "no driver" in runs[4]["details"]["note"]  # nothing scored here

    again = _cli(db_settings, "--task", "analyze", "--task", "retention")
    assert again.exit_code == 0, again.output
    latest = asyncio.run(_runs(db_settings))[-2:]
    assert [(r["task"], r["details"].get("analyzed", r["details"].get("archived"))) for r in latest] == [
        ("retention", []), ("analyze", [])]  # task order, and nothing left to do


async def test_a_run_while_another_holds_the_lock_is_recorded_as_skipped_and_exits_1(db_settings):
    holder = await connect(db_settings)
    try:
        await holder.execute("SELECT pg_advisory_lock($1)", MAINTENANCE_LOCK_KEY)
        result = await asyncio.to_thread(_cli, db_settings, "--task", "partitions")
    finally:
        await holder.close()
    assert result.exit_code == 1 and "partitions skipped" in result.output
    [run] = await _runs(db_settings)
    assert run["outcome"] == "skipped" and run["details"]["reason"] == "another maintenance run holds the lock"


def test_bad_task_names_are_refused_with_the_choices(db_settings):
    result = _cli(db_settings, "--task", "vacuum")
    assert result.exit_code == 2 and "'partitions', 'retention', 'analyze', 'report'" in result.output


def test_two_actors_racing_never_run_maintenance_at_once(ray_session, db_settings):
    import ray

    from actors.maintenance import MaintenanceActor

    asyncio.run(_populate(db_settings))
    names = [f"maint-race-{uuid.uuid4().hex[:6]}-{i}" for i in range(2)]
    actors = [MaintenanceActor.options(name=n).remote(db_settings, n) for n in names]
    try:
        # one task, so the race is deterministic: with every task in each call, the one lock let a task be skipped
        # by all six callers (each found another task holding it), which CI met once with five tasks
        rounds = ray.get([a.run_once.remote(["retention"]) for a in actors for _ in range(3)], timeout=90)
    finally:
        for actor in actors:
            ray.kill(actor)
    outcomes = [run["outcome"] for batch in rounds for run in batch]
    assert "failed" not in outcomes and outcomes.count("ok") >= 1, outcomes
    assert "skipped" in outcomes, "six concurrent calls never met: the race this test is about did not happen"
    worked = sorted((r["started_at"], r["finished_at"]) for r in asyncio.run(_runs(db_settings))
                    if r["outcome"] != "skipped")
    for (_, finished), (started, _) in itertools.pairwise(worked):
        assert started >= finished, "two maintenance runs overlapped"
    archived = [a for batch in rounds for run in batch if run["task"] == "retention" and run["outcome"] == "ok"
                for a in run["details"]["archived"]]
    assert len(archived) == 1  # the old month was retired once, by whichever actor got there first


def test_the_pipeline_starts_supervises_and_stops_its_maintenance_actor(ray_session, db_settings, kafka_topics):
    import ray

    from autoins.pipeline import start_pipeline, stop_pipeline

    settings = db_settings.with_overrides(
        kafka_consumer_group=f"test-{uuid.uuid4().hex[:8]}", num_shards=1, num_persistence=1,
        kafka_num_consumers=1, maintenance_tick_s=0.5, maintenance_report_every_s=1.0, **kafka_topics,
    )
    prefix = f"{uuid.uuid4().hex[:6]}-"

    def tasks_done() -> set[str]:
        return {r["task"] for r in asyncio.run(_runs(settings)) if r["outcome"] == "ok"}

    pipeline = start_pipeline(settings, prefix=prefix)
    try:
        first = pipeline.maintenance
        assert first is not None
        _until(lambda: tasks_done() == {"partitions", "retention", "analyze", "report", "drift"}, 30)
        _until(lambda: 'ray_db_table_size_bytes{' in _scrape() and "ray_maintenance_runs_total{" in _scrape(), 40)
        # nothing scored here: the drift gauges are exported as −1 (unknown) beside their threshold
        _until(lambda: "ray_model_drift_psi_threshold{" in _scrape(), 30)
        metrics = _scrape()
        assert re.search(r'ray_model_feature_psi\{[^}]*feature="night_share"[^}]*\} -1.0', metrics), [
            line for line in metrics.splitlines() if "drift" in line or "psi" in line]
        pid = ray.get(first.stats.remote())["pid"]
        ray.kill(first, no_restart=True)
        _until(lambda: _pid(f"{prefix}maintenance") not in (None, pid), 40)
        reports = len([r for r in asyncio.run(_runs(settings)) if r["task"] == "report"])
        _until(lambda: len([r for r in asyncio.run(_runs(settings)) if r["task"] == "report"]) > reports, 15)
    finally:
        asyncio.run(stop_pipeline(pipeline))
    _until(lambda: _pid(f"{prefix}maintenance") is None, 15)


def _scrape() -> str:
    """Every node's metrics export, as the API's /metrics merges them (Ray reports every ~10 s)."""
    import httpx
    import ray

    from deployments.metrics import node_targets

    texts = []
    for target in node_targets(ray.nodes()):
        try:
            texts.append(httpx.get(f"http://{target}/metrics", timeout=5).text)
        except httpx.HTTPError:
            continue
    return "\n".join(texts)


def _pid(name: str) -> int | None:
    import ray

    try:
        return ray.get(ray.get_actor(name).stats.remote(), timeout=5)["pid"]
    except Exception:
        return None


def _until(condition, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)
