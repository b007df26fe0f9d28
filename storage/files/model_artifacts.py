"""Model artifacts on disk: `<models_dir>/<model_version>/{model.pkl, spec.json, manifest.json}` (+ report).

The version is derived from the content: `freq-<sha256 over (name, sha256) of model.pkl and spec.json>[:12]`,
so the same training gives the same version, and loading can prove the files are the ones trained.
manifest.json records each file's sha256 and the creation time (not in the version: retraining the same model
keeps its version), signed with MODEL_SIGNING_KEY (storage/files/artifact_signature.py). Loading verifies the
signature, then every hash, *before* unpickling; any failure raises ArtifactError naming the file. Writes go to a
temporary directory renamed into place: a reader never sees half an artifact.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import pickle
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import msgspec
import numpy as np
from pydantic import SecretStr

from domain.risk_model.errors import ArtifactError
from domain.risk_model.spec import ModelSpec, decode_spec, encode_spec
from storage.files.artifact_signature import signed, verify_signature
from usecases.ports.fairness import ModelReference, ReferenceLoader

MODEL_FILE, SPEC_FILE, MANIFEST_FILE, REPORT_FILE = "model.pkl", "spec.json", "manifest.json", "report.md"
HASHED_FILES = (MODEL_FILE, SPEC_FILE)
VERSION_PATTERN = re.compile(r"^freq-[0-9a-f]{12}$")


@dataclass(frozen=True, slots=True)
class LoadedArtifact:
    model_version: str
    spec: ModelSpec
    estimator: object
    path: Path
    created_at: str


@dataclass(frozen=True, slots=True)
class ArtifactInfo:
    model_version: str
    path: Path
    created_at: str


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def content_version(files: dict[str, bytes]) -> str:
    """`freq-` + 12 hex of sha256 over "name:sha256\\n" lines of the hashed files, in name order."""
    text = "".join(f"{name}:{_sha256(files[name])}\n" for name in sorted(HASHED_FILES))
    return "freq-" + _sha256(text.encode())[:12]


def serialize(spec: ModelSpec, estimator: object) -> dict[str, bytes]:
    """The hashed files' bytes. Pickle protocol 5 of a fitted sklearn estimator is byte-stable for the
    same fit in the same library versions (checked by tests/unit/test_training_determinism.py)."""
    return {MODEL_FILE: pickle.dumps(estimator, protocol=5), SPEC_FILE: encode_spec(spec)}


def save_artifact(models_dir: Path, spec: ModelSpec, estimator: object, *, created_at: str,
                  signing_key: SecretStr) -> Path:
    """Write an artifact signed with `signing_key`; returns its directory. The same content again keeps the
    existing directory when it verifies with this key (else it is rewritten: damaged, unsigned, another key)."""
    files = serialize(spec, estimator)
    version = content_version(files)
    models_dir.mkdir(parents=True, exist_ok=True)
    final = models_dir / version
    if final.is_dir():
        try:
            verify_artifact(models_dir, version, signing_key=signing_key)
            return final
        except ArtifactError:
            shutil.rmtree(final)  # a damaged copy of the same content: rewrite it
    tmp = models_dir / f".tmp-{version}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    for name, data in files.items():
        (tmp / name).write_bytes(data)
    manifest = {"model_version": version, "created_at": created_at,
                "files": {name: _sha256(data) for name, data in sorted(files.items())}}
    (tmp / MANIFEST_FILE).write_text(json.dumps(signed(manifest, signing_key), indent=2) + "\n")
    os.replace(tmp, final)
    return final


def list_artifacts(models_dir: Path) -> list[ArtifactInfo]:
    """Artifacts with a readable manifest, newest first (created_at, then version name)."""
    found = []
    if not models_dir.is_dir():
        return found
    for path in models_dir.iterdir():
        if not (path.is_dir() and VERSION_PATTERN.match(path.name)):
            continue
        try:
            manifest = json.loads((path / MANIFEST_FILE).read_text())
            created = str(manifest.get("created_at", ""))
        except (OSError, ValueError):
            created = ""
        found.append(ArtifactInfo(path.name, path, created))
    return sorted(found, key=lambda a: (a.created_at, a.model_version), reverse=True)


def resolve_version(models_dir: Path, model_version: str | None) -> str:
    """`model_version`, or the newest artifact's when None; ArtifactError when there is none."""
    if model_version is not None:
        return model_version
    artifacts = list_artifacts(models_dir)
    if not artifacts:
        raise ArtifactError(f"no model artifact in {models_dir}; run `autoins train`")
    return artifacts[0].model_version


@dataclass(frozen=True, slots=True)
class VerifiedArtifact:
    """An artifact's bytes whose signature, hashes and version checked out; nothing unpickled yet."""
    model_version: str
    path: Path
    created_at: str
    files: dict[str, bytes]


def verify_artifact(models_dir: Path, model_version: str | None = None, *,
                    signing_key: SecretStr) -> VerifiedArtifact:
    """Check an artifact (None = newest) without unpickling: the manifest's signature with `signing_key`, each
    file's sha256, the content version. ArtifactError names the version and the bad file."""
    version = resolve_version(models_dir, model_version)
    if not VERSION_PATTERN.match(version):
        raise ArtifactError(f"model version {version!r} is not a model version (expected freq-<12 hex>)")
    path = models_dir / version
    if not path.is_dir():
        raise ArtifactError(f"model {version}: no artifact directory {path}")
    try:
        manifest = json.loads((path / MANIFEST_FILE).read_text())
        recorded = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ArtifactError(f"model {version}: {path / MANIFEST_FILE} is missing or unreadable ({error})") from None
    verify_signature(manifest, signing_key, f"model {version}: {path / MANIFEST_FILE}")
    if manifest.get("model_version") != version:
        raise ArtifactError(f"model {version}: {path / MANIFEST_FILE} was signed for {manifest.get('model_version')}")
    files: dict[str, bytes] = {}
    for name in HASHED_FILES:
        try:
            files[name] = (path / name).read_bytes()
        except OSError:
            raise ArtifactError(f"model {version}: {path / name} is missing") from None
        if _sha256(files[name]) != recorded.get(name):
            raise ArtifactError(f"model {version}: {path / name} does not match its recorded sha256 (corrupted)")
    if content_version(files) != version:
        raise ArtifactError(f"model {version}: the files in {path} hash to {content_version(files)}, not {version}")
    return VerifiedArtifact(version, path, str(manifest.get("created_at", "")), files)


def load_artifact(models_dir: Path, model_version: str | None = None, *, signing_key: SecretStr) -> LoadedArtifact:
    """Verify (`verify_artifact`) and only then unpickle an artifact (None = newest)."""
    verified = verify_artifact(models_dir, model_version, signing_key=signing_key)
    version, path = verified.model_version, verified.path
    try:
        spec = decode_spec(verified.files[SPEC_FILE])
        estimator = pickle.loads(verified.files[MODEL_FILE])
    except Exception as error:  # a verified file that still fails: another library version, a format change
        raise ArtifactError(f"model {version}: cannot load {path}: {type(error).__name__}: {error}") from None
    return LoadedArtifact(version, spec, estimator, path, verified.created_at)


def feature_cache_path(data_dir: Path, seed: int, drivers: int, days: int, feature_spec_version: str) -> Path:
    tag = feature_spec_version.replace("/", "-")
    return data_dir / "training-cache" / f"features-{tag}-seed{seed}-drivers{drivers}-days{days}.npy"


def read_feature_cache(path: Path, shape: tuple[int, int]) -> np.ndarray | None:
    """Cached simulated features, or None when absent, unreadable or of another shape (then recompute)."""
    try:
        features = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None
    return features if features.shape == shape and features.dtype == np.float64 else None


def write_feature_cache(path: Path, features: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}.npy")
    np.save(tmp, features, allow_pickle=False)
    os.replace(tmp, path)


def read_model_reference(models_dir: Path, model_version: str, *, signing_key: SecretStr) -> ModelReference:
    """The inputs' training bins of one artifact, read from its verified spec.json (the pickle is hashed, never
    loaded). Never raises: an artifact without bins, missing or failing verification is a reference with a note."""
    try:
        spec = decode_spec(verify_artifact(models_dir, model_version, signing_key=signing_key).files[SPEC_FILE])
    except (ArtifactError, msgspec.ValidationError, msgspec.DecodeError) as error:
        return ModelReference(model_version, None, f"no training reference for the inputs: {error}")
    if spec.input_reference is None:
        return ModelReference(model_version, None, f"model {model_version} was trained before its artifact kept its "
                              "inputs' training distribution: their drift is unknown; retrain (`autoins train`)")
    return ModelReference(model_version, spec.input_reference)


def reference_loader(models_dir: Path, signing_key: SecretStr) -> ReferenceLoader:
    """`read_model_reference` off the event loop (it reads and hashes the artifact's files)."""

    async def load(model_version: str) -> ModelReference:
        return await asyncio.to_thread(read_model_reference, models_dir, model_version, signing_key=signing_key)

    return load
