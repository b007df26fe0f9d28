"""Device keys: the credential a telematics device posts readings with (docs/SECURITY.md §6). Pure.

A key is `adk1.<device id, 32 hex>.<secret, 43 base64url chars>`: 256 random bits the caller draws (randomness is
an input), prefixed by the device's id so the API finds the one row to compare against without an index on the
secret, and a wrong secret for a known device is refused from the cache without a database read.

Stored as SHA-256 of the whole key, compared in constant time. A slow password hash (argon2, ~25 ms of CPU) buys
nothing here: it slows a guesser who tries a dictionary of likely passwords, and a 256-bit random secret has no
dictionary — a preimage of SHA-256 is as far out of reach as the secret itself. On the ingest path it would cost
~25 ms per request (the whole request budget). The prefix `adk1` names the format, so a later one can coexist.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from dataclasses import dataclass

KEY_FORMAT = "adk1"
SECRET_BYTES = 32  # 256 bits
DIGEST_BYTES = 32  # SHA-256
_SECRET_CHARS = 43  # base64url of 32 bytes, unpadded
_KEY_CHARS = len(KEY_FORMAT) + 1 + 32 + 1 + _SECRET_CHARS
_B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A key as the admin sees it once, and the digest that is all the database keeps."""

    key: str
    digest: bytes


def issue_key(device_id: uuid.UUID, secret: bytes) -> IssuedKey:
    """The key of `device_id` with these `SECRET_BYTES` random bytes (the caller draws them: `secrets`)."""
    if len(secret) != SECRET_BYTES:
        raise ValueError(f"a device key secret is {SECRET_BYTES} random bytes, got {len(secret)}")
    text = base64.urlsafe_b64encode(secret).rstrip(b"=").decode("ascii")
    key = f"{KEY_FORMAT}.{device_id.hex}.{text}"
    return IssuedKey(key, key_digest(key))


def key_digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def device_of(key: str) -> uuid.UUID | None:
    """The device id a well-formed key names, or None for anything else (no I/O is worth spending on it)."""
    if len(key) != _KEY_CHARS:
        return None
    fmt, _, rest = key.partition(".")
    hex_id, _, secret = rest.partition(".")
    if fmt != KEY_FORMAT or len(hex_id) != 32 or len(secret) != _SECRET_CHARS or not _B64URL.issuperset(secret):
        return None
    try:
        return uuid.UUID(hex=hex_id) if hex_id == hex_id.lower() else None
    except ValueError:
        return None


def key_matches(key: str, stored_digest: bytes) -> bool:
    """Constant-time: the time taken says nothing about how much of the digest matched."""
    return hmac.compare_digest(key_digest(key), stored_digest)
