"""HMAC-SHA256 signatures of model artifact manifests (docs/MODEL.md §6, docs/SECURITY.md §7).

model.pkl is a pickle: loading it runs code. Its sha256 is in manifest.json, and the manifest's version, creation
time and file hashes are signed with MODEL_SIGNING_KEY, a setting kept outside models_dir. Whoever can write the
models folder but does not hold the key can neither change a file (its hash), nor a hash (the signature), nor
re-sign with a key of their own (the key id and the signature). Pure: bytes in, dict or ArtifactError out.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from pydantic import SecretStr

from domain.risk_model.errors import ArtifactError

ALGORITHM = "HMAC-SHA256"
_CONTEXT = b"autoins model artifact manifest v1\n"


def key_id(key: SecretStr) -> str:
    """16 hex naming the key in errors without revealing it (an HMAC of a constant, not a hash of the key)."""
    return hmac.new(key.get_secret_value().encode(), b"autoins model signing key id", hashlib.sha256).hexdigest()[:16]


def _signed_bytes(manifest: dict[str, Any]) -> bytes:
    content = {name: manifest.get(name) for name in ("model_version", "created_at", "files")}
    return _CONTEXT + json.dumps(content, sort_keys=True, separators=(",", ":")).encode()


def _mac(manifest: dict[str, Any], key: SecretStr) -> str:
    return hmac.new(key.get_secret_value().encode(), _signed_bytes(manifest), hashlib.sha256).hexdigest()


def signed(manifest: dict[str, Any], key: SecretStr) -> dict[str, Any]:
    """The manifest with its `signature`: algorithm, key id and the HMAC of version, created_at and file hashes."""
    return {**manifest, "signature": {"algorithm": ALGORITHM, "key_id": key_id(key), "hmac": _mac(manifest, key)}}


def verify_signature(manifest: dict[str, Any], key: SecretStr, label: str) -> None:
    """ArtifactError (prefixed with `label`, e.g. "model freq-…: …/manifest.json") unless `key` signed it."""
    signature = manifest.get("signature")
    if not isinstance(signature, dict) or not signature.get("hmac"):
        raise ArtifactError(f"{label} is not signed; artifacts load only when signed with MODEL_SIGNING_KEY "
                            "(retrain with `autoins train`)")
    if signature.get("algorithm") != ALGORITHM:
        raise ArtifactError(f"{label} is signed with {signature.get('algorithm')!r}, not {ALGORITHM}")
    if signature.get("key_id") != key_id(key):
        raise ArtifactError(f"{label} is signed with another key (key id {signature.get('key_id')}, "
                            f"MODEL_SIGNING_KEY has key id {key_id(key)})")
    if not hmac.compare_digest(str(signature["hmac"]), _mac(manifest, key)):
        raise ArtifactError(f"{label}: its signature does not match its content (tampered)")
