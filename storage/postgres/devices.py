"""PostgresDeviceStore: the DeviceStore port over `devices` (migrations/0010_create_devices.sql). SQL only.

The digest leaves this module only through `credential` (the ingest path's check); every other statement
returns `DEVICE_COLUMNS`. One statement per call, except rotating a device that turns out absent or revoked
(a second read says which).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import asyncpg

from config.settings import Settings
from storage.postgres.pool import acquire
from usecases.ports.admin_store import Conflict, MissingReference
from usecases.ports.device_store import DEVICE_COLUMNS, DeviceCredential
from usecases.ports.read_models import Row

COLUMNS = ", ".join(DEVICE_COLUMNS)


class PostgresDeviceStore:
    def __init__(self, pool: asyncpg.Pool, settings: Settings) -> None:
        self.pool = pool
        self.settings = settings

    async def create_device(self, device_id: uuid.UUID, driver_id: str, label: str, key_digest: bytes,
                            at: datetime) -> Row:
        async with acquire(self.pool, self.settings) as conn:
            try:
                row = await conn.fetchrow(
                    "INSERT INTO devices (device_id, driver_id, label, key_digest, created_at)"
                    f" VALUES ($1, $2, $3, $4, $5) RETURNING {COLUMNS}",
                    device_id, driver_id, label, key_digest, at)  # fmt: skip
            except asyncpg.ForeignKeyViolationError:
                raise MissingReference(f"driver {driver_id!r} does not exist") from None
            except asyncpg.UniqueViolationError:
                raise Conflict(f"device {device_id} already exists") from None
        return dict(row)

    async def list_devices(self, limit: int, offset: int, driver_id: str | None,
                           include_revoked: bool) -> tuple[int, Sequence[Row]]:
        where = "WHERE ($1::text IS NULL OR driver_id = $1) AND ($2 OR revoked_at IS NULL)"
        async with acquire(self.pool, self.settings) as conn:
            total = await conn.fetchval(f"SELECT count(*) FROM devices {where}", driver_id, include_revoked)
            rows = await conn.fetch(
                f"SELECT {COLUMNS} FROM devices {where} ORDER BY driver_id, created_at, device_id LIMIT $3 OFFSET $4",
                driver_id, include_revoked, limit, offset)  # fmt: skip
        return total, [dict(r) for r in rows]

    async def get_device(self, device_id: uuid.UUID) -> Row | None:
        async with acquire(self.pool, self.settings) as conn:
            row = await conn.fetchrow(f"SELECT {COLUMNS} FROM devices WHERE device_id = $1", device_id)
        return None if row is None else dict(row)

    async def credential(self, device_id: uuid.UUID) -> DeviceCredential | None:
        async with acquire(self.pool, self.settings) as conn:
            row = await conn.fetchrow(
                "SELECT d.driver_id, d.key_digest, d.revoked_at IS NOT NULL AS revoked,"
                " coalesce(r.is_active, false) AS driver_active"
                " FROM devices d LEFT JOIN drivers r ON r.driver_id = d.driver_id WHERE d.device_id = $1",
                device_id)  # fmt: skip
        if row is None:
            return None
        return DeviceCredential(device_id, row["driver_id"], bytes(row["key_digest"]), row["revoked"],
                                row["driver_active"])

    async def revoke_device(self, device_id: uuid.UUID, at: datetime) -> Row | None:
        async with acquire(self.pool, self.settings) as conn:
            row = await conn.fetchrow(
                f"UPDATE devices SET revoked_at = coalesce(revoked_at, $2) WHERE device_id = $1 RETURNING {COLUMNS}",
                device_id, at)  # fmt: skip
        return None if row is None else dict(row)

    async def rotate_key(self, device_id: uuid.UUID, key_digest: bytes, at: datetime) -> Row | None:
        async with acquire(self.pool, self.settings) as conn:
            row = await conn.fetchrow(
                "UPDATE devices SET key_digest = $2, key_rotated_at = $3 WHERE device_id = $1 AND revoked_at IS NULL"
                f" RETURNING {COLUMNS}",
                device_id, key_digest, at)  # fmt: skip
            if row is not None:
                return dict(row)
            if await conn.fetchval("SELECT true FROM devices WHERE device_id = $1", device_id):
                raise Conflict(f"device {device_id} is revoked: register a new device instead")
        return None

    async def record_seen(self, device_id: uuid.UUID, at: datetime) -> None:
        async with acquire(self.pool, self.settings) as conn:
            await conn.execute(
                "UPDATE devices SET last_seen_at = $2 WHERE device_id = $1"
                " AND (last_seen_at IS NULL OR last_seen_at < $2)",
                device_id, at)  # fmt: skip
