"""`autoins bench chaos` end to end: one of every kind of fault — each pipeline actor, an API replica, the risk
model replica, the Serve controller, and a worker node — while a fleet streams in, against a fault-free run.

The command runs as a subprocess, as an operator runs it: it starts (and stops) a Ray cluster of its own (a head
and 2 worker nodes), a private broker and Redis, and drops its scratch databases. What must hold is the issue's
bar: nothing lost or duplicated, trips, domain events, risk scores and premiums identical to the fault-free run,
ingest resumed within 10 s of every fault, and no API request failed for a client that retries a GET once.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest

from autoins.bench.chaos_faults import FAULT_KINDS, NODE_LOSS
from config.settings import PROJECT_ROOT
from storage.postgres.pool import with_database
from tests.integration.test_bench_ingest import bench_databases

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def test_one_of_every_fault_loses_nothing_changes_nothing_and_the_api_keeps_answering(base_settings, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    done = subprocess.run(
        [sys.executable, "-m", "autoins.cli", "bench", "chaos", "--events", "60000", "--drivers", "100",
         "--rate", "1500", "--kinds", ",".join(FAULT_KINDS), "--each", "--node-loss", "--json",
         "--output", str(tmp_path / "BENCHMARKS.md")],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=840,
    )
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, f"stdout must hold the one JSON line: {done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    result = json.loads(lines[0])
    figures = {k: result[k] for k in ("lost", "duplicated", "trips_equal", "scores_equal", "domain_events_equal",
                                      "recovery_s_max", "api_requests", "api_failed", "api_failed_first_try",
                                      "compared", "differences", "faults")}
    print(json.dumps(figures))
    assert done.returncode == 0, json.dumps(figures, indent=1)[:6000]

    assert result["lost"] == 0 and result["duplicated"] == 0
    assert result["trips_equal"] and result["scores_equal"] and result["domain_events_equal"], result["differences"]
    assert result["compared"]["trips"]["faulty_rows"] > 0 and result["compared"]["risk_scores"]["faulty_rows"] > 0
    assert [f["kind"] for f in result["faults"] if f["kind"] != NODE_LOSS] == list(FAULT_KINDS)
    assert NODE_LOSS in [f["kind"] for f in result["faults"]]
    for fault in result["faults"]:
        assert fault["recovered_s"] is not None, fault
        assert fault["drained"] or fault["resumed_s"] <= 10.0, fault
        if fault["kind"] != NODE_LOSS:
            assert fault["new_pid"] not in (None, fault["pid"]), fault
    assert result["api_requests"] > 500
    assert result["api_failed"] == 0, (result["api_failures"], result["faults"])
    assert "<!-- bench:chaos begin -->" in (tmp_path / "BENCHMARKS.md").read_text()
    server = with_database(base_settings.database_url, "postgres")
    assert asyncio.run(bench_databases(server, result["run_id"])) == [], "its scratch databases are dropped"
