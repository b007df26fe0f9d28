"""DeviceStore: registered telematics devices and their key digests (docs/SECURITY.md §6).

Rows cross as mappings with `DEVICE_COLUMNS` — never the digest, so no admin answer can carry it; the ingest path
reads a `DeviceCredential` (digest included) by device id. A device pointing at a missing driver raises
`MissingReference` (→ 422), rotating a revoked device `Conflict` (→ 409); None means "no such device" (→ 404).
Times are inputs (the use case's clock), so the fake and PostgreSQL agree.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

import msgspec

from usecases.ports.read_models import Row

DEVICE_COLUMNS = ("device_id", "driver_id", "label", "created_at", "key_rotated_at", "revoked_at", "last_seen_at")


class DeviceCredential(msgspec.Struct, frozen=True):
    """What the ingest path checks a key against; cached as JSON (msgspec: bytes as base64, uuid as text)."""

    device_id: uuid.UUID
    driver_id: str
    key_digest: bytes
    revoked: bool
    driver_active: bool = True  # a deactivated driver's devices are refused, and post again once reactivated


class DeviceStore(Protocol):
    async def create_device(self, device_id: uuid.UUID, driver_id: str, label: str, key_digest: bytes,
                            at: datetime) -> Row: ...

    async def list_devices(self, limit: int, offset: int, driver_id: str | None,
                           include_revoked: bool) -> tuple[int, Sequence[Row]]:
        """By driver, then creation time; revoked devices only when asked for."""
        ...

    async def get_device(self, device_id: uuid.UUID) -> Row | None: ...

    async def credential(self, device_id: uuid.UUID) -> DeviceCredential | None: ...

    async def revoke_device(self, device_id: uuid.UUID, at: datetime) -> Row | None:
        """Idempotent: a second revocation keeps the first `revoked_at`."""
        ...

    async def rotate_key(self, device_id: uuid.UUID, key_digest: bytes, at: datetime) -> Row | None:
        """Replace the digest (the old key stops matching); Conflict when the device is revoked."""
        ...

    async def record_seen(self, device_id: uuid.UUID, at: datetime) -> None:
        """`last_seen_at` moves forward only (replicas write out of order)."""
        ...
