"""The plan's §11 locustfile, unchanged, against the API on Serve: every request of its user succeeds.

Seeded like the demo (`autoins seed`: driver0001 / password0001) in a database of its own, with a small
trained model deployed (driver0001 has no score yet, so /risk/me/score answers the model's prior).
Locust runs as a subprocess, as `locust -f tests/performance/locustfile.py` would be run by hand.
"""

from __future__ import annotations

import asyncio
import csv
import subprocess
import sys
from urllib.parse import urlsplit, urlunsplit

import pytest
from ray import serve

from autoins.seed import seed_demo
from config.names import API_APP, RISK_APP
from config.settings import PROJECT_ROOT
from deployments.builder import API_ROUTE, build_api_app, build_risk
from domain.risk_model.dataset import DatasetSpec, build_dataset
from domain.risk_model.spec import TrainingParams
from domain.risk_model.training import train
from storage.files.model_artifacts import save_artifact
from tests.integration.fixtures_db import migrate_database

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

LOCUSTFILE = PROJECT_ROOT / "tests" / "performance" / "locustfile.py"
PLAN_REQUESTS = {"/api/v1/auth/login", "/api/v1/drivers/me", "/api/v1/risk/me/score",
                 "/api/v1/drivers/me/trips?page=1&page_size=20"}


@pytest.fixture
def seeded_api(serve_session, base_settings, fresh_database_url, tmp_path):
    redis = urlsplit(base_settings.redis_url)
    settings = base_settings.with_overrides(database_url=fresh_database_url, models_dir=tmp_path / "models",
                                            redis_url=urlunsplit(redis._replace(path="/12")))
    asyncio.run(migrate_database(settings))
    asyncio.run(seed_demo(settings, 1))
    result = train(build_dataset(DatasetSpec(seed=3, drivers=30, days=1)), TrainingParams(gbm_max_iter=20), {})
    save_artifact(settings.models_dir, result.spec, result.estimator, created_at="2026-01-01T00:00:00Z",
                  signing_key=settings.model_signing_key)
    serve.run(build_risk(settings), name=RISK_APP, route_prefix=None)
    serve.run(build_api_app(settings), name=API_APP, route_prefix=API_ROUTE)
    yield serve_session
    serve.delete(API_APP)
    serve.delete(RISK_APP)


def test_the_plans_locustfile_runs_unchanged_without_a_single_failure(seeded_api, tmp_path):
    prefix = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--host", seeded_api,
         "--users", "10", "--spawn-rate", "10", "--run-time", "8s", "--only-summary", "--csv", str(prefix),
         "--exit-code-on-error", "1", "--stop-timeout", "3"],
        capture_output=True, text=True, timeout=120,
    )
    with open(f"{prefix}_stats.csv", newline="") as f:
        rows = {row["Name"]: row for row in csv.DictReader(f) if row["Name"] != "Aggregated"}
    assert done.returncode == 0, done.stderr[-2000:]
    assert set(rows) == PLAN_REQUESTS, rows.keys()
    assert {name: int(row["Failure Count"]) for name, row in rows.items()} == dict.fromkeys(PLAN_REQUESTS, 0)
    assert int(rows["/api/v1/auth/login"]["Request Count"]) == 10  # on_start, once per user
    assert all(int(rows[name]["Request Count"]) > 0 for name in PLAN_REQUESTS)
