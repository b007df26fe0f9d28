"""InMemoryDeviceStore: the DeviceStore port as a dict, for handler tests; passes tests/contracts/device_store_contract
like PostgresDeviceStore. `drivers` are the driver ids that exist (the foreign key)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime

from usecases.ports.admin_store import Conflict, MissingReference
from usecases.ports.device_store import DEVICE_COLUMNS, DeviceCredential
from usecases.ports.read_models import Row


class InMemoryDeviceStore:
    def __init__(self, drivers: Iterable[str] = ()) -> None:
        self.drivers = set(drivers)
        self.rows: dict[uuid.UUID, dict] = {}
        self.credential_reads = 0
        self.seen_writes = 0
        self.inactive_drivers: set[str] = set()  # drivers.is_active false (the admin store owns it in PostgreSQL)

    async def create_device(self, device_id: uuid.UUID, driver_id: str, label: str, key_digest: bytes,
                            at: datetime) -> Row:
        if driver_id not in self.drivers:
            raise MissingReference(f"driver {driver_id!r} does not exist")
        if device_id in self.rows or any(r["key_digest"] == key_digest for r in self.rows.values()):
            raise Conflict(f"device {device_id} already exists")
        self.rows[device_id] = {"device_id": device_id, "driver_id": driver_id, "label": label,
                                "key_digest": key_digest, "created_at": at, "key_rotated_at": None,
                                "revoked_at": None, "last_seen_at": None}
        return self._out(device_id)

    async def list_devices(self, limit: int, offset: int, driver_id: str | None,
                           include_revoked: bool) -> tuple[int, Sequence[Row]]:
        rows = [r for r in self.rows.values() if (driver_id is None or r["driver_id"] == driver_id)
                and (include_revoked or r["revoked_at"] is None)]
        rows.sort(key=lambda r: (r["driver_id"], r["created_at"], r["device_id"]))
        return len(rows), [self._out(r["device_id"]) for r in rows[offset:offset + limit]]

    async def get_device(self, device_id: uuid.UUID) -> Row | None:
        return self._out(device_id) if device_id in self.rows else None

    async def credential(self, device_id: uuid.UUID) -> DeviceCredential | None:
        self.credential_reads += 1
        row = self.rows.get(device_id)
        if row is None:
            return None
        return DeviceCredential(device_id, row["driver_id"], row["key_digest"], row["revoked_at"] is not None,
                                row["driver_id"] not in self.inactive_drivers)

    async def revoke_device(self, device_id: uuid.UUID, at: datetime) -> Row | None:
        row = self.rows.get(device_id)
        if row is None:
            return None
        row["revoked_at"] = row["revoked_at"] or at
        return self._out(device_id)

    async def rotate_key(self, device_id: uuid.UUID, key_digest: bytes, at: datetime) -> Row | None:
        row = self.rows.get(device_id)
        if row is None:
            return None
        if row["revoked_at"] is not None:
            raise Conflict(f"device {device_id} is revoked: register a new device instead")
        row["key_digest"], row["key_rotated_at"] = key_digest, at
        return self._out(device_id)

    async def record_seen(self, device_id: uuid.UUID, at: datetime) -> None:
        self.seen_writes += 1
        row = self.rows.get(device_id)
        if row is not None and (row["last_seen_at"] is None or row["last_seen_at"] < at):
            row["last_seen_at"] = at

    def _out(self, device_id: uuid.UUID) -> Row:
        row = self.rows[device_id]
        return {name: row[name] for name in DEVICE_COLUMNS}
