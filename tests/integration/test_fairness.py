"""Fairness and drift on PostgreSQL, in-process (issue 16 item 4): trips scored by the scorer's own round with a
trained model give a per-input PSI whose inputs are proven to be the model's (their feature hashes match), and
vehicle use set through the admin CRUD is a cohort."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from domain.risk_assessment import RiskAssessment, ScoreRequest
from domain.risk_model import RiskPredictor, TrainingParams
from domain.risk_model.dataset import DatasetSpec, build_dataset
from domain.risk_model.inputs import MODEL_INPUTS
from domain.risk_model.training import train
from storage.files.model_artifacts import save_artifact
from storage.memory.score_store import RecordingScorePublisher
from storage.postgres.pool import create_pool
from storage.postgres.score_store import PostgresScoreStore
from tests.integration.inprocess_api import bearer, drop_seeded, insert_trips, login, running_api, seeded_database
from usecases.scoring_round import ScoringRound

DRIVERS = ["driver0001", "driver0002", "driver0003"]


class LocalModel:
    """The RiskModel port over a predictor in this process: what the Serve deployment answers, without Serve."""

    def __init__(self, predictor: RiskPredictor, k_trips: float) -> None:
        self.predictor, self.k_trips = predictor, k_trips

    async def assess(self, request: ScoreRequest) -> RiskAssessment:
        return (await self.assess_many([request]))[0]

    async def assess_many(self, requests: Sequence[ScoreRequest]) -> list[RiskAssessment]:
        return self.predictor.assess_many(requests, k_trips=self.k_trips)


@pytest.fixture(scope="module")
async def scored(base_settings, tmp_path_factory):
    """Three seeded drivers, their trips scored by a model whose artifact (with input deciles) is in models_dir."""
    models_dir = tmp_path_factory.mktemp("fairness-models")
    result = train(build_dataset(DatasetSpec(seed=5, drivers=30, days=1, exposure_years=10.0)),
                   TrainingParams(seed=5), {"drivers": 30.0})
    version = save_artifact(models_dir, result.spec, result.estimator, created_at="2026-01-01T00:00:00Z",
                            signing_key=base_settings.model_signing_key).name
    settings = (await seeded_database(base_settings, drivers=len(DRIVERS))).with_overrides(models_dir=models_dir)
    pool = await create_pool(settings, application_name="test-fairness", min_size=1, max_size=2)
    try:
        end = datetime.now(UTC) - timedelta(hours=1)
        for n, driver in enumerate(DRIVERS):
            await insert_trips(settings, driver, 2 + 3 * n, end=end - timedelta(minutes=n))
        model = LocalModel(RiskPredictor(result.spec, result.estimator, version), settings.credibility_k_trips)
        scoring = ScoringRound(store=PostgresScoreStore(pool), model=model, publisher=RecordingScorePublisher(),
                               window_days=settings.scoring_window_days)
        assert (await scoring.score(DRIVERS)).scored == 2 + 5 + 8
        yield settings, version
    finally:
        await pool.close()
        await drop_seeded(settings)


async def test_each_model_inputs_psi_is_over_the_inputs_the_model_saw_against_its_training_deciles(scored):
    settings, version = scored
    async with running_api(settings) as (_, client):
        admin = bearer(await login(client, "admin"))
        drift = (await client.get("/api/v1/admin/analytics/drift", params={"days": 1}, headers=admin)).json()
    assert (drift["drivers"], drift["inputs_drivers"], drift["model_version"]) == (3, 3, version), drift
    assert drift["note"] is None and [i["name"] for i in drift["inputs"]] == list(MODEL_INPUTS)
    for item in drift["inputs"]:
        assert item["psi"] >= 0 and item["drift"] == (item["psi"] > drift["threshold"])
        assert sum(b["actual"] for b in item["bins"]) == pytest.approx(1.0)
        assert sum(b["expected"] for b in item["bins"]) == pytest.approx(1.0)
    # every driver drove 20 km trips at 20 km/h, unlike any simulated population: km per trip is far from training
    assert next(i for i in drift["inputs"] if i["name"] == "km_per_trip")["drift"] is True


async def test_vehicle_use_is_set_through_the_policy_crud_and_is_a_cohort(scored):
    settings, _ = scored
    async with running_api(settings) as (_, client):
        admin = bearer(await login(client, "admin"))
        policy = (await client.get("/api/v1/admin/policies", params={"driver_id": DRIVERS[0]}, headers=admin)).json()
        policy_id = policy["items"][0]["policy_id"]
        bad = await client.patch(f"/api/v1/admin/policies/{policy_id}", json={"vehicle_use": "racing"}, headers=admin)
        assert bad.status_code == 422 and "vehicle_use" in bad.text
        changed = await client.patch(f"/api/v1/admin/policies/{policy_id}", json={"vehicle_use": "rideshare"},
                                     headers=admin)
        assert changed.status_code == 200 and changed.json()["vehicle_use"] == "rideshare"
        cohorts = (await client.get("/api/v1/admin/analytics/cohorts", params={"days": 1}, headers=admin)).json()
    uses = {c["cohort"]: c for c in cohorts["items"] if c["dimension"] == "vehicle_use"}
    assert uses["rideshare"]["drivers"] == 1 and sum(c["drivers"] for c in uses.values()) == 3
    assert {c["dimension"] for c in cohorts["items"]} == {"age_band", "region", "vehicle_use"}
