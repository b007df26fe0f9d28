"""InMemoryAdminStore: the AdminStore port over dicts, for handler tests. Same contract as the PostgreSQL
adapter (tests/contracts/admin_store.py): ordering, defaults, Conflict on a taken key or a driver still
referenced, MissingReference on an unknown driver."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from usecases.ports.admin_store import Conflict, MissingReference
from usecases.ports.read_models import Row

DRIVER_FIELDS = ("first_name", "last_name", "email", "phone", "license_number", "date_of_birth", "timezone",
                 "is_active")
POLICY_FIELDS = ("status", "base_premium", "current_premium", "per_km_rate", "currency", "effective_date",
                 "expiration_date", "vehicle_use")
USER_PATCHABLE = frozenset({"password_hash", "role", "driver_id", "is_active"})


def _now() -> datetime:
    return datetime.now(UTC)


def _public_user(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != "password_hash"}


class InMemoryAdminStore:
    def __init__(self) -> None:
        self.drivers: dict[str, dict[str, Any]] = {}
        self.policies: dict[uuid.UUID, dict[str, Any]] = {}
        self.users: dict[uuid.UUID, dict[str, Any]] = {}

    # -- drivers ------------------------------------------------------------------------------------

    async def list_drivers(self, limit: int, offset: int, is_active: bool | None) -> tuple[int, Sequence[Row]]:
        rows = [d for _, d in sorted(self.drivers.items()) if is_active is None or d["is_active"] == is_active]
        return len(rows), rows[offset:offset + limit]

    def _email_taken(self, email: Any, by: str) -> bool:
        return email is not None and any(d["email"] == email and k != by for k, d in self.drivers.items())

    async def create_driver(self, driver_id: str, fields: Mapping[str, Any]) -> Row:
        if driver_id in self.drivers:
            raise Conflict(f"driver {driver_id!r} already exists")
        if self._email_taken(fields.get("email"), driver_id):
            raise Conflict(f"email {fields.get('email')!r} is already used by another driver")
        now = _now()
        row = {"driver_id": driver_id, "phone": None, "license_number": None, "date_of_birth": None,
               "timezone": "UTC", "is_active": True, **{k: v for k, v in fields.items() if k in DRIVER_FIELDS},
               "created_at": now, "updated_at": now}
        self.drivers[driver_id] = row
        return dict(row)

    async def get_driver(self, driver_id: str) -> Row | None:
        row = self.drivers.get(driver_id)
        return None if row is None else dict(row)

    async def update_driver(self, driver_id: str, changes: Mapping[str, Any]) -> Row | None:
        row = self.drivers.get(driver_id)
        if row is None:
            return None
        if self._email_taken(changes.get("email"), driver_id):
            raise Conflict(f"email {changes.get('email')!r} is already used by another driver")
        row.update({k: v for k, v in changes.items() if k in DRIVER_FIELDS}, updated_at=_now())
        return dict(row)

    async def delete_driver(self, driver_id: str) -> bool:
        if driver_id not in self.drivers:
            return False
        if any(p["driver_id"] == driver_id for p in self.policies.values()) or any(
                u["driver_id"] == driver_id for u in self.users.values()):
            raise Conflict(f"driver {driver_id!r} still has a login or policies: delete those first, or deactivate "
                           "the driver")
        del self.drivers[driver_id]
        return True

    # -- policies -----------------------------------------------------------------------------------

    async def list_policies(self, limit: int, offset: int, status: str | None,
                            driver_id: str | None) -> tuple[int, Sequence[Row]]:
        rows = sorted((p for p in self.policies.values()
                       if status in (None, p["status"]) and driver_id in (None, p["driver_id"])),
                      key=lambda p: p["policy_number"])
        return len(rows), [dict(r) for r in rows[offset:offset + limit]]

    async def create_policy(self, fields: Mapping[str, Any]) -> Row:
        if fields["driver_id"] not in self.drivers:
            raise MissingReference(f"driver {fields['driver_id']!r} does not exist")
        if any(p["policy_number"] == fields["policy_number"] for p in self.policies.values()):
            raise Conflict(f"policy number {fields['policy_number']!r} is taken")
        if fields["expiration_date"] <= fields["effective_date"]:
            raise MissingReference("expiration_date must be after effective_date")
        now, policy_id = _now(), uuid.uuid4()
        row = {"policy_id": policy_id, "status": "active", "currency": "USD", "last_score": None, "last_band": None,
               "vehicle_use": "personal",
               "current_premium": fields["base_premium"], **fields, "created_at": now, "updated_at": now}
        self.policies[policy_id] = row
        return dict(row)

    async def get_policy(self, policy_id: uuid.UUID) -> Row | None:
        row = self.policies.get(policy_id)
        return None if row is None else dict(row)

    async def update_policy(self, policy_id: uuid.UUID, changes: Mapping[str, Any]) -> Row | None:
        row = self.policies.get(policy_id)
        if row is None:
            return None
        merged = {**row, **{k: v for k, v in changes.items() if k in POLICY_FIELDS}}
        if merged["expiration_date"] <= merged["effective_date"]:
            raise MissingReference("expiration_date must be after effective_date")
        row.update(merged, updated_at=_now())
        return dict(row)

    async def delete_policy(self, policy_id: uuid.UUID) -> str | None:
        row = self.policies.pop(policy_id, None)
        return None if row is None else row["driver_id"]

    # -- logins -------------------------------------------------------------------------------------

    async def list_users(self, limit: int, offset: int, role: str | None) -> tuple[int, Sequence[Row]]:
        rows = sorted((u for u in self.users.values() if role is None or u["role"] == role),
                      key=lambda u: u["username"])
        return len(rows), [_public_user(u) for u in rows[offset:offset + limit]]

    def _check_user(self, user_id: uuid.UUID | None, username: str | None, role: str, driver_id: str | None) -> None:
        others = [u for k, u in self.users.items() if k != user_id]
        if username is not None and any(u["username"] == username for u in others):
            raise Conflict(f"username {username!r} is taken")
        if driver_id is not None and any(u["driver_id"] == driver_id for u in others):
            raise Conflict(f"driver {driver_id!r} already has a login")
        if driver_id is not None and driver_id not in self.drivers:
            raise MissingReference(f"driver {driver_id!r} does not exist")
        if role == "driver" and driver_id is None:
            raise MissingReference("a driver login needs a driver_id")

    async def create_user(self, *, username: str, password_hash: str, role: str, driver_id: str | None) -> Row:
        self._check_user(None, username, role, driver_id)
        user_id = uuid.uuid4()
        self.users[user_id] = {"user_id": user_id, "username": username, "role": role, "driver_id": driver_id,
                               "is_active": True, "created_at": _now(), "last_login_at": None,
                               "password_hash": password_hash}
        return _public_user(self.users[user_id])

    async def get_user(self, user_id: uuid.UUID) -> Row | None:
        row = self.users.get(user_id)
        return None if row is None else _public_user(row)

    async def update_user(self, user_id: uuid.UUID, changes: Mapping[str, Any]) -> Row | None:
        unknown = set(changes) - USER_PATCHABLE
        if unknown:
            raise ValueError(f"cannot change {sorted(unknown)}")
        row = self.users.get(user_id)
        if row is None:
            return None
        merged = {**row, **changes}
        self._check_user(user_id, None, merged["role"], merged["driver_id"])
        row.update(changes)
        return _public_user(row)

    async def delete_user(self, user_id: uuid.UUID) -> bool:
        return self.users.pop(user_id, None) is not None
