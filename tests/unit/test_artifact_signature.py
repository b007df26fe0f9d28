"""Model artifacts load only when MODEL_SIGNING_KEY signed them, and nothing is unpickled before that is proven
(docs/MODEL.md §6, docs/SECURITY.md §6). The attacker here can write the models folder but has no key."""

from __future__ import annotations

import hashlib
import json
import pathlib
import pickle

import pytest
from pydantic import SecretStr

from domain.risk_model import ArtifactError, TrainingParams
from domain.risk_model.dataset import DatasetSpec, build_dataset
from domain.risk_model.training import train
from storage.files.artifact_signature import key_id, signed
from storage.files.model_artifacts import (
    MANIFEST_FILE,
    MODEL_FILE,
    SPEC_FILE,
    content_version,
    load_artifact,
    save_artifact,
    verify_artifact,
)

pytestmark = pytest.mark.unit
KEY = SecretStr("the-service-model-signing-key-" + "s" * 16)
ATTACKERS_KEY = SecretStr("an-attackers-own-signing-key-" + "a" * 16)


class _Touch:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.path),))


def detonating_pickle(marker) -> bytes:
    """A pickle that creates `marker` when it is loaded: proof of code execution."""
    return pickle.dumps(_Touch(str(marker)), protocol=5)


@pytest.fixture(scope="module")
def trained():
    data = build_dataset(DatasetSpec(seed=5, drivers=30, days=1, exposure_years=10.0))
    return train(data, TrainingParams(seed=5, gbm_max_iter=20), {"drivers": 30.0})


@pytest.fixture
def artifact(tmp_path, trained):
    return save_artifact(tmp_path, trained.spec, trained.estimator, created_at="2026-01-01T00:00:00Z",
                         signing_key=KEY)


def manifest_of(path):
    return json.loads((path / MANIFEST_FILE).read_text())


def write_manifest(path, manifest):
    (path / MANIFEST_FILE).write_text(json.dumps(manifest))


def swap_in_a_detonating_model(path, marker) -> dict:
    """What an attacker without the key can do: replace model.pkl and rewrite every hash in the manifest."""
    (path / MODEL_FILE).write_bytes(detonating_pickle(marker))
    files = {name: (path / name).read_bytes() for name in (MODEL_FILE, SPEC_FILE)}
    manifest = manifest_of(path)
    manifest["files"] = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    return manifest


def test_a_signed_artifact_loads_with_its_key(tmp_path, artifact):
    loaded = load_artifact(tmp_path, signing_key=KEY)
    assert loaded.model_version == artifact.name
    signature = manifest_of(artifact)["signature"]
    assert signature["algorithm"] == "HMAC-SHA256" and signature["key_id"] == key_id(KEY)
    assert KEY.get_secret_value() not in (artifact / MANIFEST_FILE).read_text()


def test_the_detonator_really_runs_code_when_unpickled(tmp_path):
    marker = tmp_path / "pwned"
    pickle.loads(detonating_pickle(marker))
    assert marker.exists()


def test_an_unsigned_artifact_is_refused_before_unpickling(tmp_path, artifact):
    marker = tmp_path / "pwned"
    manifest = swap_in_a_detonating_model(artifact, marker)
    del manifest["signature"]
    write_manifest(artifact, manifest)
    with pytest.raises(ArtifactError, match=rf"model {artifact.name}: .*manifest.json is not signed; .*"
                                            "MODEL_SIGNING_KEY"):
        load_artifact(tmp_path, signing_key=KEY)
    assert not marker.exists()


def test_a_tampered_artifact_is_refused_before_unpickling(tmp_path, artifact):
    marker = tmp_path / "pwned"
    write_manifest(artifact, swap_in_a_detonating_model(artifact, marker))  # the old signature kept
    with pytest.raises(ArtifactError, match=r"manifest.json: its signature does not match its content \(tampered\)"):
        load_artifact(tmp_path, signing_key=KEY)
    assert not marker.exists()


def test_an_artifact_re_signed_with_another_key_is_refused_before_unpickling(tmp_path, artifact):
    marker = tmp_path / "pwned"
    manifest = swap_in_a_detonating_model(artifact, marker)
    manifest.pop("signature")
    write_manifest(artifact, signed(manifest, ATTACKERS_KEY))
    with pytest.raises(ArtifactError, match=rf"signed with another key \(key id {key_id(ATTACKERS_KEY)}, "
                                            rf"MODEL_SIGNING_KEY has key id {key_id(KEY)}\)"):
        load_artifact(tmp_path, signing_key=KEY)
    assert not marker.exists()


def test_a_forged_key_id_does_not_help(tmp_path, artifact):
    manifest = swap_in_a_detonating_model(artifact, tmp_path / "pwned")
    manifest.pop("signature")
    forged = signed(manifest, ATTACKERS_KEY)
    forged["signature"]["key_id"] = key_id(KEY)
    write_manifest(artifact, forged)
    with pytest.raises(ArtifactError, match=r"\(tampered\)"):
        verify_artifact(tmp_path, signing_key=KEY)


def test_a_moved_creation_time_is_tampering(tmp_path, artifact):
    """created_at picks the newest artifact: making an old one "newest" is a rollback."""
    manifest = manifest_of(artifact)
    manifest["created_at"] = "2099-01-01T00:00:00Z"
    write_manifest(artifact, manifest)
    with pytest.raises(ArtifactError, match=r"\(tampered\)"):
        verify_artifact(tmp_path, signing_key=KEY)


def test_a_signed_manifest_copied_into_another_version_is_refused(tmp_path, trained, artifact):
    other = train(build_dataset(DatasetSpec(seed=6, drivers=30, days=1, exposure_years=10.0)),
                  TrainingParams(seed=6, gbm_max_iter=20), {"drivers": 30.0})
    second = save_artifact(tmp_path, other.spec, other.estimator, created_at="2026-01-02T00:00:00Z", signing_key=KEY)
    for name in (MODEL_FILE, SPEC_FILE, MANIFEST_FILE):
        (second / name).write_bytes((artifact / name).read_bytes())
    with pytest.raises(ArtifactError, match=rf"model {second.name}: .*was signed for {artifact.name}"):
        verify_artifact(tmp_path, second.name, signing_key=KEY)


def test_saving_over_a_copy_signed_with_another_key_re_signs_it_with_ours(tmp_path, trained):
    theirs = save_artifact(tmp_path, trained.spec, trained.estimator, created_at="t", signing_key=ATTACKERS_KEY)
    ours = save_artifact(tmp_path, trained.spec, trained.estimator, created_at="t", signing_key=KEY)
    assert ours == theirs and manifest_of(ours)["signature"]["key_id"] == key_id(KEY)
    assert verify_artifact(tmp_path, signing_key=KEY).model_version == content_version(
        {name: (ours / name).read_bytes() for name in (MODEL_FILE, SPEC_FILE)})


@pytest.mark.parametrize(("key", "trains"), [(KEY, False), (ATTACKERS_KEY, True)])
def test_the_demo_retrains_unless_its_newest_artifact_verifies(tmp_path, artifact, monkeypatch, key, trains):
    import autoins.demo as demo
    from config.settings import Settings

    runs: list[list[str]] = []
    monkeypatch.setattr(demo.subprocess, "run", lambda argv, check: runs.append(argv) or _Done())
    demo.ensure_model(Settings(models_dir=tmp_path, model_signing_key=key))
    assert bool(runs) is trains and all(argv[-1] == "train" for argv in runs)


class _Done:
    returncode = 0
