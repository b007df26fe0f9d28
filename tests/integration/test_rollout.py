"""`autoins rollout` against the real thing: Serve with the HAProxy ingress, Redis for the split, and a real
Prometheus judging the canary from the metrics its replicas export.

A deliberately failing API build (a copy of this source tree whose driver profile raises) is rolled out while
clients keep reading; Prometheus sees the canary's 5xx at the 10 % step, the rollout rolls back on its own, and no
client of the old side sees a failure. A model version that cannot load never gets a driver.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
import redis
from ray import serve

from autoins.rollout import ServeApiSides, ServeModelSides, run_rollout
from config.names import API_APP, API_CANARY_APP, RISK_APP, RISK_CANARY_APP
from config.settings import PROJECT_ROOT
from deployments.builder import API_ROUTE, build_api_app
from domain.rollout import Triggers, goes_to_canary
from storage.redis.keys import rollout_key
from tests.integration.monitoring_support import NOT_INSTALLED, installed, session_prometheus
from tests.integration.serve_support import bearer, driver_token, insert_drivers, run_driver_ids
from usecases.rollout import Outcome, RolloutPlan

pytestmark = [pytest.mark.timeout(300), pytest.mark.skipif(not installed(), reason=NOT_INSTALLED)]
PACKAGES = ("actors", "autoins", "config", "deployments", "domain", "migrations", "storage", "usecases")
BROKEN = '        raise RuntimeError("deliberately broken build: the driver profile fails")\n'
PLAN = RolloutPlan(steps=(10, 50, 100), soak_s=20, check_interval_s=2, window_s=30, keep_old_s=0,
                   triggers=Triggers(min_requests=5), max_holds=2)


@pytest.fixture(scope="module")
def prometheus(ray_session, migrated_settings, tmp_path_factory):
    with session_prometheus(ray_session, migrated_settings, tmp_path_factory.mktemp("monitoring")) as running:
        yield running


def broken_build(root: Path) -> Path:
    """This source tree, with every driver profile read raising (a 500 from the route, measured as one)."""
    for package in PACKAGES:
        shutil.copytree(PROJECT_ROOT / package, root / package, ignore=shutil.ignore_patterns("__pycache__"))
    module = root / "usecases" / "driver_queries.py"
    text = module.read_text()
    signature = "    async def profile(self, driver_id: str) -> bytes | None:\n"
    assert signature in text, "the profile use case moved: point the broken build at it again"
    module.write_text(text.replace(signature, signature + BROKEN, 1))
    return root


class Readers:
    """Drivers reading their own profile in a loop, each with its own token, until stopped; statuses per driver."""

    def __init__(self, base_url: str, tokens: dict[str, str]) -> None:
        self.base_url, self.tokens = base_url, tokens
        self.statuses: dict[str, Counter] = {driver: Counter() for driver in tokens}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=15) as client:
            while not self._stop.is_set():
                for driver, token in self.tokens.items():
                    try:
                        status = client.get(f"/api/v1/drivers/{driver}", headers=bearer(token)).status_code
                    except httpx.HTTPError as error:
                        status = type(error).__name__
                    self.statuses[driver][status] += 1

    def __enter__(self) -> Readers:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(30)


def test_a_failing_build_is_rolled_back_at_10_percent_and_the_old_side_never_fails(
        prometheus, serve_session, migrated_settings, tmp_path):
    port = int(serve_session.rsplit(":", 1)[1])
    settings = migrated_settings.with_overrides(http_port=port, api_num_replicas=1, rollout_split_check_s=0.2,
                                                prometheus_url=prometheus.prometheus_url)
    drivers = run_driver_ids(30)
    insert_drivers(settings, drivers)
    tokens = {driver: driver_token(settings, driver) for driver in drivers}
    on_canary = {d for d, token in tokens.items() if goes_to_canary(bearer(token)["Authorization"], 10)}
    assert on_canary and len(on_canary) < len(drivers), "30 tokens all on one side: the hash is broken"
    serve.run(build_api_app(settings), name=API_APP, route_prefix=API_ROUTE)
    try:
        with Readers(serve_session, tokens) as readers:
            time.sleep(1)  # clients are reading before the rollout begins
            report = asyncio.run(run_rollout(settings, "api", "v2-broken",
                                             ServeApiSides(settings, broken_build(tmp_path / "build")), PLAN))
            time.sleep(1)  # and after it ends
        print(f"\nrollout: {report.outcome} after {report.seconds:.1f} s — {report.reason}")
        for check in report.checks:
            print(f"  {check.at_s:5.1f} s  {check.percent:3d} %  {check.reason}")
        assert report.outcome is Outcome.ROLLED_BACK and report.reached_percent == 10, report.reason
        assert "error rate" in report.reason, report.reason
        assert API_CANARY_APP not in serve.status().applications
        assert redis.Redis.from_url(settings.redis_url).get(rollout_key("api")) is None
        old_side = {d: dict(c) for d, c in readers.statuses.items() if d not in on_canary}
        failed = {d: c for d, c in old_side.items() if set(c) != {200}}
        assert failed == {}, f"clients of the old side saw failures: {failed}"
        assert sum(sum(c.values()) for c in old_side.values()) > 100
        # canary clients too: the stable side answered the reads the broken build failed
        assert {d: dict(c) for d, c in readers.statuses.items() if d in on_canary and set(c) != {200}} == {}
        after = httpx.get(f"{serve_session}/api/v1/drivers/{min(on_canary)}", headers=bearer(tokens[min(on_canary)]))
        assert after.status_code == 200
    finally:
        serve.delete(API_APP)
        if API_CANARY_APP in serve.status().applications:
            serve.delete(API_CANARY_APP)


def _artifact(models_dir: Path, seed: int, signing_key) -> str:
    from domain.risk_model import TrainingParams
    from domain.risk_model.dataset import DatasetSpec, build_dataset
    from domain.risk_model.training import train
    from storage.files.model_artifacts import save_artifact

    result = train(build_dataset(DatasetSpec(seed=seed, drivers=30, days=1, exposure_years=10.0)),
                   TrainingParams(seed=1, gbm_max_iter=20), {"drivers": 30.0})
    return save_artifact(models_dir, result.spec, result.estimator, created_at="2026-01-01T00:00:00Z",
                         signing_key=signing_key).name


@pytest.fixture(scope="module")
def two_models(tmp_path_factory, migrated_settings) -> tuple[Path, str, str]:
    models_dir = tmp_path_factory.mktemp("models")
    old, new = (_artifact(models_dir, seed, migrated_settings.model_signing_key) for seed in (4, 5))
    assert old != new
    return models_dir, old, new


def test_a_model_version_that_cannot_load_is_rolled_back_before_any_driver_reaches_it(
        prometheus, serve_session, migrated_settings, two_models):
    from deployments.builder import build_risk

    models_dir, old, _new = two_models
    settings = migrated_settings.with_overrides(models_dir=models_dir, model_version=old, ml_num_replicas=1,
                                                prometheus_url=prometheus.prometheus_url)
    serve.run(build_risk(settings), name=RISK_APP, route_prefix=None)
    try:
        report = asyncio.run(run_rollout(settings, "model", "no-such-version", ServeModelSides(settings), PLAN))
        assert report.outcome is Outcome.ROLLED_BACK and report.reached_percent == 0, report.reason
        assert "no-such-version" in report.reason and report.checks == []
        assert RISK_CANARY_APP not in serve.status().applications
        assert redis.Redis.from_url(settings.redis_url).get(rollout_key("model")) is None
    finally:
        serve.delete(RISK_APP)
        if RISK_CANARY_APP in serve.status().applications:
            serve.delete(RISK_CANARY_APP)


def test_a_healthy_model_version_takes_its_share_of_drivers_then_is_promoted_in_place(
        prometheus, serve_session, migrated_settings, two_models):
    from deployments.builder import build_risk
    from storage.serve.risk_model import ServeRiskModel
    from usecases.ports.risk_model import prior_request as score_request

    models_dir, old, new = two_models
    settings = migrated_settings.with_overrides(models_dir=models_dir, model_version=old, ml_num_replicas=1,
                                                rollout_split_check_s=0.2, prometheus_url=prometheus.prometheus_url)
    serve.run(build_risk(settings), name=RISK_APP, route_prefix=None)
    drivers = [f"rollout-driver-{i:02d}" for i in range(40)]
    seen: dict[str, set[str]] = {driver: set() for driver in drivers}
    stop = threading.Event()

    def score_continuously() -> None:
        async def loop() -> None:
            model = ServeRiskModel(timeout_s=10.0)
            while not stop.is_set():
                for answer in await model.assess_many([score_request(d) for d in drivers]):
                    seen[answer.driver_id].add(answer.model_version)
                await asyncio.gather(*(model.assess(score_request(d)) for d in drivers[:10]))
                await asyncio.sleep(0.05)

        asyncio.run(loop())

    scorer = threading.Thread(target=score_continuously, daemon=True)
    scorer.start()
    plan = RolloutPlan(steps=(50, 100), soak_s=12, check_interval_s=2, window_s=30, keep_old_s=0,
                       triggers=Triggers(min_requests=5), max_holds=3)
    try:
        report = asyncio.run(run_rollout(settings, "model", new, ServeModelSides(settings), plan))
        stop.set()
        scorer.join(30)
        assert report.outcome is Outcome.PROMOTED, report.reason
        at_half = {d for d in drivers if goes_to_canary(d, 50)}
        # a driver of the first half moved to the new model; one of the second half never saw it before 100 %
        assert all(new in seen[d] for d in at_half), {d: seen[d] for d in at_half}
        assert all(old in seen[d] for d in drivers)
        info = asyncio.run(_model_info(RISK_APP))
        assert info["model_version"] == new, info  # promoted in place: the stable app serves the new version
        assert RISK_CANARY_APP not in serve.status().applications
    finally:
        stop.set()
        serve.delete(RISK_APP)
        if RISK_CANARY_APP in serve.status().applications:
            serve.delete(RISK_CANARY_APP)


async def _model_info(app: str) -> dict:
    from config.names import RISK_DEPLOYMENT

    return await serve.get_deployment_handle(RISK_DEPLOYMENT, app_name=app).model_info.remote()
