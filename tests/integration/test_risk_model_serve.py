"""The RiskModel deployment on a real Serve: single and batched calls, real batching under concurrency,
the prediction cache, a version switch through `user_config` without a restart, a replica that
stays up (not ready, with the reason) without an artifact or with a corrupted one, and a replica SIGKILLed
under load while the adapter keeps answering from the other."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal

import msgspec
import pytest
from pydantic import SecretStr
from ray import serve

from config.names import RISK_APP
from deployments.risk_model import build_risk_app
from domain.risk_assessment import ScoreRequest
from domain.risk_model import ModelNotReady, RiskPredictor, TrainingParams
from domain.risk_model.dataset import DatasetSpec, build_dataset
from domain.risk_model.training import train
from storage.files.artifact_signature import signed
from storage.files.model_artifacts import load_artifact, save_artifact
from storage.serve.risk_model import ServeRiskModel
from tests.contracts.risk_model_contract import *  # noqa: F403

K_TRIPS = 40.0
ZERO = ScoreRequest(driver_id="x", features=(0.0,) * 14)


@pytest.fixture(scope="module")
def models(tmp_path_factory, base_settings):
    """Two tiny artifacts (seeds 1 and 2, the second newer) in one directory, and their dataset."""
    models_dir = tmp_path_factory.mktemp("models")
    data = build_dataset(DatasetSpec(seed=4, drivers=30, days=1, exposure_years=10.0))
    versions = []
    for seed, created in ((1, "2026-01-01T00:00:00Z"), (2, "2026-01-02T00:00:00Z")):
        result = train(data, TrainingParams(seed=seed, gbm_max_iter=20), {"drivers": 30.0})
        versions.append(save_artifact(models_dir, result.spec, result.estimator, created_at=created,
                                      signing_key=base_settings.model_signing_key).name)
    return models_dir, versions, data


def deploy(settings, models_dir, user_config=None, replicas=1):
    """One replica unless asked: most tests here look at one replica's state (pid, cache, version)."""
    settings = settings.with_overrides(models_dir=models_dir, model_version=None, credibility_k_trips=K_TRIPS,
                                       ml_batch_size=16, ml_batch_wait_s=0.05, ml_num_replicas=replicas)
    return serve.run(build_risk_app(settings, user_config=user_config), name=RISK_APP, route_prefix=None)


@pytest.fixture(scope="module")
def served(serve_session, base_settings, models):
    """One deployment for the module, pinned to the older version; `redeploy(user_config)` changes only
    the user_config (Serve reconfigures the live replica)."""
    models_dir, versions, _data = models
    handle = deploy(base_settings, models_dir, {"model_version": versions[0]})
    yield handle, lambda user_config: deploy(base_settings, models_dir, user_config)
    serve.delete(RISK_APP)


@pytest.fixture
def risk_model(served):
    """The RiskModel contract (tests/contracts) on the Serve adapter the scorer and the API use."""
    return ServeRiskModel()


@pytest.fixture
def unavailable_risk_model(serve_session):
    return ServeRiskModel(timeout_s=2.0, app_name="no-such-app")


def requests_of(data, prefix="d"):
    return [ScoreRequest(driver_id=f"{prefix}{i}", features=tuple(row.tolist())) for i, row in enumerate(data.features)]


def local_predictor(models_dir, version, signing_key):
    artifact = load_artifact(models_dir, version, signing_key=signing_key)
    return RiskPredictor(artifact.spec, artifact.estimator, artifact.model_version)


async def test_single_and_batched_calls_answer_what_the_predictor_answers(models, served, base_settings):
    models_dir, versions, data = models
    handle, _ = served
    requests = requests_of(data)
    predictor = local_predictor(models_dir, versions[0], base_settings.model_signing_key)
    expected = predictor.assess_many(requests, k_trips=K_TRIPS)
    single = await handle.assess.remote(requests[0])
    many = await handle.assess_many.remote(requests)
    assert single == expected[0]
    assert msgspec.msgpack.encode(many) == msgspec.msgpack.encode(expected)
    info = await handle.model_info.remote()
    assert info["ready"] is True and info["model_version"] == versions[0] and info["error"] is None


async def test_concurrent_single_calls_are_batched_and_repeats_hit_the_cache(models, served):
    _models_dir, versions, data = models
    handle, _ = served
    requests = [msgspec.structs.replace(r, features=(*r.features[:-1], r.features[-1] + 0.125))  # not cached yet
                for r in requests_of(data, "c")]
    before = await handle.stats.remote()
    answers = await asyncio.gather(*(handle.assess.remote(r) for r in requests))
    assert [a.driver_id for a in answers] == [r.driver_id for r in requests]
    assert {a.model_version for a in answers} == {versions[0]}
    stats = await handle.stats.remote()
    new_batches = stats["batch_sizes"][len(before["batch_sizes"]):]
    assert max(new_batches) > 1, new_batches
    assert sum(new_batches) == stats["cache_misses"] - before["cache_misses"]
    again = await handle.assess.remote(msgspec.structs.replace(requests[3], driver_id="someone-else"))
    assert again == msgspec.structs.replace(answers[3], driver_id="someone-else")
    assert (await handle.stats.remote())["cache_hits"] == stats["cache_hits"] + 1


async def test_a_bad_vector_fails_only_its_own_call(models, served):
    _models_dir, _versions, data = models
    handle, _ = served
    good = requests_of(data, "g")[:4]
    bad = ScoreRequest(driver_id="broken", features=(1.0, 2.0))
    results = await asyncio.gather(*(handle.assess.remote(r) for r in [*good, bad]), return_exceptions=True)
    assert [r.driver_id for r in results[:4]] == [g.driver_id for g in good]
    assert isinstance(results[4], ValueError) and "driver broken: expected 14 features" in str(results[4])


async def test_user_config_switches_the_version_without_restarting_the_replica(models, served, tmp_path):
    models_dir, versions, data = models
    handle, redeploy = served
    request = requests_of(data)[5]
    before = await handle.model_info.remote()
    assert (await handle.assess.remote(request)).model_version == versions[0]
    try:
        handle = redeploy({"model_version": versions[1]})
        after = await handle.model_info.remote()
        assert after["model_version"] == versions[1] and after["ready"] is True
        assert (after["pid"], after["actor_id"]) == (before["pid"], before["actor_id"])
        assert (await handle.assess.remote(request)).model_version == versions[1]
        assert (await handle.stats.remote())["cache_size"] == 1  # the switch cleared the old version's entries

        # A version that cannot load keeps the current model serving and says why.
        broken = tmp_path / "models"
        shutil.copytree(models_dir / versions[0], broken / versions[0])
        (broken / versions[0] / "model.pkl").write_bytes(b"not a pickle")
        handle = redeploy({"model_version": versions[0], "models_dir": str(broken)})
        info = await handle.model_info.remote()
        assert info["model_version"] == versions[1] and info["pid"] == before["pid"]
        assert "model.pkl does not match its recorded sha256" in info["error"]

        # Nor does one re-signed with another key than the replica's MODEL_SIGNING_KEY (docs/SECURITY.md §6).
        foreign = tmp_path / "foreign"
        shutil.copytree(models_dir / versions[0], foreign / versions[0])
        manifest_path = foreign / versions[0] / "manifest.json"
        manifest = json.loads(manifest_path.read_text())
        manifest.pop("signature")
        manifest_path.write_text(json.dumps(signed(manifest, SecretStr("another-signing-key-" + "x" * 32))))
        handle = redeploy({"model_version": versions[0], "models_dir": str(foreign)})
        info = await handle.model_info.remote()
        assert info["model_version"] == versions[1] and info["pid"] == before["pid"]
        assert "manifest.json is signed with another key" in info["error"]
    finally:
        redeploy({"model_version": versions[0], "models_dir": str(models_dir)})


async def test_without_an_artifact_the_replica_runs_not_ready_and_assess_raises(base_settings, serve_session,
                                                                                 tmp_path, models):
    models_dir, versions, _data = models
    handle = deploy(base_settings, tmp_path)
    try:
        info = await handle.model_info.remote()
        assert info["ready"] is False and "no model artifact in" in info["error"]
        with pytest.raises(ModelNotReady, match="risk model not ready: no model artifact"):
            await handle.assess.remote(ZERO)
        with pytest.raises(ModelNotReady):
            await handle.assess_many.remote([ZERO])
        assert serve.status().applications[RISK_APP].status == "RUNNING"
        # Once an artifact is there, a user_config change loads it in place.
        handle = deploy(base_settings, tmp_path, user_config={"models_dir": str(models_dir)})
        assert (await handle.assess.remote(ZERO)).model_version == versions[1]  # the newest
        assert (await handle.model_info.remote())["pid"] == info["pid"]
    finally:
        serve.delete(RISK_APP)


async def test_a_killed_replica_costs_no_call_while_another_answers(base_settings, serve_session, models):
    """Two replicas (the default); one is SIGKILLed while calls wait in both replicas' batch queues: the calls
    that died with it are sent again by the adapter and answered by the other, none fails."""
    models_dir, versions, data = models
    handle = deploy(base_settings, models_dir, {"model_version": versions[0]}, replicas=2)
    try:
        pids = set()
        for _ in range(40):
            pids.add((await handle.model_info.remote())["pid"])
            if len(pids) == 2:
                break
        assert len(pids) == 2, pids
        adapter = ServeRiskModel(timeout_s=10.0)
        requests = requests_of(data, "k")
        calls = asyncio.gather(*(adapter.assess(r) for r in requests), return_exceptions=True)
        await asyncio.sleep(0.03)  # the calls are in the replicas' batch queues (50 ms wait) when one dies
        os.kill(min(pids), signal.SIGKILL)
        answers = await calls
        failures = [a for a in answers if isinstance(a, BaseException)]
        assert not failures, failures[:3]
        assert [a.driver_id for a in answers] == [r.driver_id for r in requests]
        assert {a.model_version for a in answers} == {versions[0]}
    finally:
        serve.delete(RISK_APP)
