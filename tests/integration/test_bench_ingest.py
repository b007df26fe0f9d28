"""`autoins bench ingest` end to end, small: the report's shape and the run's bookkeeping, never its speed.

The command runs as a subprocess, as an operator runs it: it starts (and stops) its own Ray, private
broker and Redis, and drops its scratch databases.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import asyncpg
import pytest

from config.settings import PROJECT_ROOT
from storage.postgres.pool import with_database

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

JSON_HEAD = ["events", "events_per_s", "raw_events_per_s", "ratio", "p95_persist_ms", "peak_lag", "rss_mb"]


def bench(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "autoins.cli", "bench", "ingest", *args],
        cwd=PROJECT_ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=540,
    )


async def bench_databases(base_url: str, run_id: str) -> list[str]:
    conn = await asyncpg.connect(with_database(base_url, "postgres"))  # the configured database may not exist
    try:
        rows = await conn.fetch("SELECT datname FROM pg_database WHERE datname LIKE $1", f"autoins_bench_%_{run_id}")
    finally:
        await conn.close()
    return [r["datname"] for r in rows]


def test_a_small_run_stores_every_reading_once_in_both_paths_and_reports_the_documented_keys(
    tmp_path, base_settings
):
    report = tmp_path / "BENCHMARKS.md"
    done = bench("--events", "20000", "--drivers", "50", "--json", "--output", str(report))

    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout
    result = json.loads(lines[0])
    assert list(result)[: len(JSON_HEAD)] == JSON_HEAD
    assert result["events"] == 20_000
    assert result["rows_stored"] == result["distinct_event_ids"] == result["durable_messages"] == 20_000
    assert result["raw"]["rows_stored"] == 20_000 and result["raw"]["rejected"] == 0
    assert result["final_lag"] == 0 and result["dead_lettered"] == 0 and result["verified"] is True
    assert result["events_per_s"] > 0 and result["raw_events_per_s"] > 0 and result["ratio"] > 0
    assert result["p95_persist_ms"] >= result["p50_persist_ms"] > 0
    assert result["rss_mb"] > 0 and set(result["rss_peak_mb"]) >= {"consumer-0", "shard-0", "persistence-0"}
    assert {"consumer.prepare_s", "shard.fold_s", "persistence.write_s", "persistence.project_s"} <= set(
        result["stages_s"]
    )

    text = report.read_text()
    assert "<!-- bench:ingest events=20000 begin -->" in text and "<!-- bench:ingest events=20000 end -->" in text
    assert "](docs/bench/ingest-20000.png)" in text
    assert (tmp_path / "docs" / "bench" / "ingest-20000.png").stat().st_size > 0
    assert asyncio.run(bench_databases(base_settings.database_url, result["run_id"])) == []


def test_a_non_positive_event_count_is_refused_in_one_line():
    done = bench("--events", "0", "--no-write")

    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.strip().count("\n") == 0 and "--events" in done.stderr


def test_an_unreachable_postgresql_is_reported_in_one_line():
    done = bench("--events", "100", "--no-write", env={"DATABASE_URL": "postgresql://postgres@127.0.0.1:1/autoins"})

    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0 and "cannot connect to PostgreSQL" in done.stderr
