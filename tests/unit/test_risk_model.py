"""The risk model's pure parts and its artifact files: deterministic training, the score mapping,
credibility, explanations, batch = one-by-one, and artifacts that refuse to load when damaged."""

from __future__ import annotations

import itertools
import json
import math

import msgspec
import numpy as np
import pytest
from pydantic import SecretStr
from sklearn.ensemble import HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits

from domain.features import FEATURE_NAMES
from domain.risk_assessment import ScoreRequest, credibility
from domain.risk_model import ArtifactError, RiskPredictor, TrainingParams
from domain.risk_model.dataset import DatasetSpec, build_dataset
from domain.risk_model.inputs import MODEL_INPUTS, raw_inputs
from domain.risk_model.rate_model import RateModel, rate_to_score, score_quantiles
from domain.risk_model.spec import decode_spec
from domain.risk_model.training import train
from storage.files.model_artifacts import (
    MODEL_FILE,
    SPEC_FILE,
    content_version,
    list_artifacts,
    load_artifact,
    read_model_reference,
    save_artifact,
    serialize,
)
from usecases.ports.fairness import ModelReference

SPEC = DatasetSpec(seed=5, drivers=30, days=1, exposure_years=10.0)
KEY = SecretStr("unit-test-model-signing-key-" + "k" * 16)
K_TRIPS = 40.0


@pytest.fixture(scope="module")
def dataset():
    return build_dataset(SPEC)


@pytest.fixture(scope="module")
def trained(dataset):
    return train(dataset, TrainingParams(seed=5), {"drivers": 30.0})


@pytest.fixture(scope="module")
def predictor(trained):
    version = content_version(serialize(trained.spec, trained.estimator))
    return RiskPredictor(trained.spec, trained.estimator, version)


def requests_for(dataset, n=None):
    rows = dataset.features[:n] if n else dataset.features
    pairs = zip(dataset.driver_ids, rows, strict=False)
    return [ScoreRequest(driver_id=d, features=tuple(r.tolist())) for d, r in pairs]


def test_training_twice_with_one_seed_gives_the_same_bytes_version_and_predictions(dataset, trained):
    again = train(dataset, TrainingParams(seed=5), {"drivers": 30.0})
    first, second = serialize(trained.spec, trained.estimator), serialize(again.spec, again.estimator)
    assert first == second
    assert content_version(first) == content_version(second)
    assert np.array_equal(trained.out_of_fold.predicted_rate, again.out_of_fold.predicted_rate)


def test_another_seed_gives_another_model_version(dataset, trained):
    other = train(dataset, TrainingParams(seed=6), {"drivers": 30.0})
    assert content_version(serialize(other.spec, other.estimator)) != content_version(
        serialize(trained.spec, trained.estimator))


def test_score_mapping_is_monotone_and_within_0_100(trained):
    q = trained.spec.score_quantile_rates
    assert len(q) == 101 and all(b > a for a, b in itertools.pairwise(q))
    rates = np.geomspace(q[0] / 10, q[-1] * 10, 2_000)
    scores = rate_to_score(rates, q)
    assert np.all(np.diff(scores) >= 0)
    assert scores[0] == 0.0 and scores[-1] == 100.0
    assert np.all((scores >= 0) & (scores <= 100))


def test_score_quantiles_are_strictly_increasing_even_for_tied_rates():
    q = score_quantiles(np.array([0.1] * 50 + [0.2] * 50))
    assert all(b > a for a, b in itertools.pairwise(q))


def test_a_driver_without_trips_gets_the_prior_with_credibility_zero(predictor):
    [a] = predictor.assess_many([ScoreRequest(driver_id="new", features=(0.0,) * len(FEATURE_NAMES))], k_trips=K_TRIPS)
    assert a.credibility == 0.0
    assert a.rate == a.model_rate == a.prior_rate == predictor.prior_rate
    assert a.top_factors == ()
    assert a.score == round(float(rate_to_score(np.array([a.prior_rate]), predictor.spec.score_quantile_rates)[0]), 2)


def test_rate_blends_model_and_prior_by_trip_credibility(dataset, predictor):
    for a, request in zip(predictor.assess_many(requests_for(dataset), k_trips=K_TRIPS), requests_for(dataset),
                          strict=True):
        z = credibility(request.features[0], K_TRIPS)
        assert a.credibility == z
        assert math.isclose(a.rate, z * a.model_rate + (1 - z) * a.prior_rate, rel_tol=1e-12)
        assert 0.0 <= a.score <= 100.0
        assert a.band == "ABCDE"[min(int(a.score // 20), 4)]


def test_assess_many_equals_assessing_one_by_one_bit_for_bit(dataset, predictor):
    requests = requests_for(dataset)
    together = predictor.assess_many(requests, k_trips=K_TRIPS)
    alone = [predictor.assess_many([r], k_trips=K_TRIPS)[0] for r in requests]
    assert msgspec.msgpack.encode(together) == msgspec.msgpack.encode(alone)
    reversed_batch = predictor.assess_many(requests[::-1], k_trips=K_TRIPS)[::-1]
    assert msgspec.msgpack.encode(reversed_batch) == msgspec.msgpack.encode(together)


def test_glm_explanations_are_coefficient_times_distance_from_the_portfolio_mean(dataset, predictor):
    requests = requests_for(dataset, 10)
    model = predictor.model
    t = predictor.transform.apply(raw_inputs(np.array([r.features for r in requests])))
    log_rate, contributions = model.log_rate_and_contributions(t)
    log_reference = model.log_rate(np.asarray(predictor.spec.reference_inputs)[np.newaxis, :])[0]
    if predictor.family == "glm":  # additive: the contributions add up to the distance from the reference
        assert np.allclose(contributions.sum(axis=1), log_rate - log_reference)
    for a, row in zip(predictor.assess_many(requests, k_trips=K_TRIPS), contributions, strict=True):
        assert len(a.top_factors) == 3
        expected = sorted(range(len(MODEL_INPUTS)), key=lambda j: (-abs(round(row[j], 4)), j))[:3]
        assert [f.name for f in a.top_factors] == [MODEL_INPUTS[j] for j in expected]
        assert [f.contribution for f in a.top_factors] == [round(float(row[j]), 4) for j in expected]


def test_gbm_explanations_move_one_input_to_the_reference_within_one_predict_call(dataset):
    t = np.log1p(raw_inputs(dataset.features))
    y = dataset.claims / dataset.exposure_years
    with threadpool_limits(limits=1):
        gbm = HistGradientBoostingRegressor(loss="poisson", max_iter=20, min_samples_leaf=3, random_state=0).fit(t, y)
    reference = tuple(float(x) for x in t.mean(axis=0))
    calls = []
    real_predict = gbm.predict
    gbm.predict = lambda rows: calls.append(len(rows)) or real_predict(rows)
    model = RateModel("gbm", gbm, reference)
    log_rate, contributions = model.log_rate_and_contributions(t[:4])
    assert calls == [4 * (1 + len(MODEL_INPUTS))]
    j = 3
    moved = t[:4].copy()
    moved[:, j] = reference[j]
    assert np.allclose(contributions[:, j], log_rate - np.log(real_predict(moved)))


def test_bad_feature_vectors_are_refused_naming_the_driver(predictor):
    with pytest.raises(ValueError, match="driver d-short: expected 14 features"):
        predictor.assess_many([ScoreRequest(driver_id="d-short", features=(1.0, 2.0))], k_trips=K_TRIPS)
    with pytest.raises(ValueError, match="driver d-nan: features must be finite"):
        predictor.assess_many([ScoreRequest(driver_id="d-nan", features=(math.nan,) * 14)], k_trips=K_TRIPS)
    assert predictor.assess_many([], k_trips=K_TRIPS) == []


def test_a_saved_artifact_loads_back_to_the_same_predictions(tmp_path, dataset, trained, predictor):
    path = save_artifact(tmp_path, trained.spec, trained.estimator, created_at="2026-01-01T00:00:00Z",
                         signing_key=KEY)
    assert path.name == predictor.model_version
    loaded = load_artifact(tmp_path, signing_key=KEY)
    again = RiskPredictor(loaded.spec, loaded.estimator, loaded.model_version)
    requests = requests_for(dataset, 5)
    assert again.assess_many(requests, k_trips=K_TRIPS) == predictor.assess_many(requests, k_trips=K_TRIPS)
    assert [a.model_version for a in list_artifacts(tmp_path)] == [predictor.model_version]


@pytest.mark.parametrize("damaged", [MODEL_FILE, SPEC_FILE])
def test_a_corrupted_artifact_file_is_named_in_the_error(tmp_path, trained, damaged):
    path = save_artifact(tmp_path, trained.spec, trained.estimator, created_at="t", signing_key=KEY)
    data = bytearray((path / damaged).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (path / damaged).write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=rf"{path.name}: .*{damaged} does not match its recorded sha256"):
        load_artifact(tmp_path, path.name, signing_key=KEY)


def test_missing_artifacts_give_clear_errors(tmp_path, trained):
    with pytest.raises(ArtifactError, match=r"no model artifact in .*run `autoins train`"):
        load_artifact(tmp_path, signing_key=KEY)
    with pytest.raises(ArtifactError, match="no artifact directory"):
        load_artifact(tmp_path, "freq-000000000000", signing_key=KEY)
    with pytest.raises(ArtifactError, match="is not a model version"):
        load_artifact(tmp_path, "../etc", signing_key=KEY)
    path = save_artifact(tmp_path, trained.spec, trained.estimator, created_at="t", signing_key=KEY)
    (path / MODEL_FILE).unlink()
    with pytest.raises(ArtifactError, match=f"{MODEL_FILE} is missing"):
        load_artifact(tmp_path, signing_key=KEY)


def test_the_newest_artifact_is_loaded_when_no_version_is_given(tmp_path, dataset, trained):
    other = train(dataset, TrainingParams(seed=9), {"drivers": 30.0})
    old = save_artifact(tmp_path, trained.spec, trained.estimator, created_at="2026-01-01T00:00:00Z",
                        signing_key=KEY)
    new = save_artifact(tmp_path, other.spec, other.estimator, created_at="2026-02-01T00:00:00Z", signing_key=KEY)
    assert load_artifact(tmp_path, signing_key=KEY).model_version == new.name
    assert load_artifact(tmp_path, old.name, signing_key=KEY).model_version == old.name
    manifest = json.loads((new / "manifest.json").read_text())
    assert set(manifest["files"]) == {MODEL_FILE, SPEC_FILE}


def test_training_keeps_each_inputs_deciles_and_the_reference_reads_them_from_the_verified_spec(
        tmp_path, dataset, trained):
    bins = trained.spec.input_reference
    assert tuple(b.name for b in bins) == MODEL_INPUTS
    assert all(math.isclose(sum(b.proportions), 1.0) and len(b.edges) <= 9 for b in bins)
    path = save_artifact(tmp_path, trained.spec, trained.estimator, created_at="t", signing_key=KEY)
    reference = read_model_reference(tmp_path, path.name, signing_key=KEY)
    assert reference == ModelReference(path.name, bins)


def test_an_artifact_trained_before_input_references_is_a_note_not_an_error(tmp_path, trained):
    old = msgspec.structs.replace(trained.spec, input_reference=None)
    path = save_artifact(tmp_path, old, trained.estimator, created_at="t", signing_key=KEY)
    spec_json = json.loads((path / SPEC_FILE).read_text())
    spec_json.pop("input_reference")  # as the files written before the field existed
    assert decode_spec(json.dumps(spec_json).encode()).input_reference is None
    reference = read_model_reference(tmp_path, path.name, signing_key=KEY)
    assert reference.inputs is None and "trained before" in reference.note
    missing = read_model_reference(tmp_path, "freq-000000000000", signing_key=KEY)
    assert missing.inputs is None and "no artifact directory" in missing.note
