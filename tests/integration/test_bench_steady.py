"""`autoins bench ingest --rate`, small and in this session's Ray and Serve: a steady stream is stored exactly
once, the WebSocket probes arrive and the lag is sampled. Never its timing goals (CI machines are noisy)."""

from __future__ import annotations

import asyncio
import io

import asyncpg
import pytest
from rich.console import Console

from autoins.bench.steady import SteadyOptions, run_steady_benchmark
from storage.postgres.pool import with_database

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


async def scratch_databases(base_url: str, run_id: str) -> list[str]:
    conn = await asyncpg.connect(with_database(base_url, "postgres"))
    try:
        rows = await conn.fetch("SELECT datname FROM pg_database WHERE datname LIKE $1", f"autoins_bench_%_{run_id}")
    finally:
        await conn.close()
    return [r["datname"] for r in rows]


def test_a_short_steady_stream_is_stored_once_and_reaches_the_probe_sockets(
    ray_session, serve_session, base_settings, kafka_bootstrap
):
    options = SteadyOptions(rate=1_000, duration_s=8, warmup_s=2, drivers=50, probes=2, partitions=2,
                            private_broker=False, ws_url=serve_session, timeout_s=60, command="test")
    console = Console(file=io.StringIO())

    result = run_steady_benchmark(base_settings.with_overrides(kafka_bootstrap_servers=kafka_bootstrap), options,
                                  console)

    assert result["verified"] is True, console.file.getvalue()[-3000:]
    assert result["readings"] == 10_000
    assert result["rows_stored"] == result["distinct_event_ids"] == 10_000 + result["probes_sent"]
    assert result["final_lag"] == 0 and result["dead_lettered"] == 0 and result["rewinds"] == 0
    assert result["probes_sent"] >= 30 and result["probes_received"] >= result["probes_sent"] // 2
    assert result["ws_p95_ms"] >= result["ws_p50_ms"] > 0
    assert result["lag_samples"] > 10 and result["lag_p95"] >= result["lag_p50"] >= 0
    assert result["achieved_rate"] > 0 and result["durable_rate"] > 0 and result["batches"] > 0
    assert isinstance(result["goals_met"], bool)
    assert asyncio.run(scratch_databases(base_settings.database_url, result["run_id"])) == []
