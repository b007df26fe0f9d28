"""The admin writes over the fakes: a committed change drops the driver's cached answers; passwords are hashed;
an admin cannot delete their own login."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

import pytest

from storage.memory.admin_store import InMemoryAdminStore
from storage.memory.cache import InMemoryResponseCache
from storage.memory.token_versions import InMemoryTokenVersions, RecordingNotifier
from usecases.admin import AdminWrites
from usecases.ports.admin_store import Conflict
from usecases.sessions import Sessions


async def _hash(password: str) -> str:
    return f"hashed:{password}"


def _admin() -> tuple[AdminWrites, InMemoryAdminStore, InMemoryResponseCache]:
    store, cache = InMemoryAdminStore(), InMemoryResponseCache()
    sessions = Sessions(InMemoryTokenVersions(), RecordingNotifier(), ttl_s=5.0)
    return AdminWrites(store, cache, _hash, sessions), store, cache


async def _cached(cache: InMemoryResponseCache, driver_id: str) -> None:
    async def old() -> bytes:
        return b"old"

    await cache.get(driver_id, "profile", old, 60)


async def test_changing_a_driver_drops_their_cached_answers():
    admin, _store, cache = _admin()
    await admin.create_driver("d1", {"first_name": "A", "last_name": "B", "email": "d1@example.com"})
    await _cached(cache, "d1")
    await admin.update_driver("d1", {"first_name": "C"})
    assert cache.entries == {}


async def test_a_policy_change_drops_its_drivers_cached_quote():
    admin, _store, cache = _admin()
    await admin.create_driver("d1", {"first_name": "A", "last_name": "B", "email": "d1@example.com"})
    policy = await admin.create_policy({"driver_id": "d1", "policy_number": "P", "base_premium": Decimal("700"),
                                        "per_km_rate": Decimal("0.01"), "effective_date": date(2026, 1, 1),
                                        "expiration_date": date(2027, 1, 1)})
    await _cached(cache, "d1")
    assert await admin.delete_policy(policy["policy_id"]) is True and cache.entries == {}
    assert await admin.delete_policy(policy["policy_id"]) is False


async def test_passwords_are_stored_hashed_and_an_admin_cannot_delete_their_own_login():
    admin, store, _cache = _admin()
    user = await admin.create_user(username="root", password="secret", role="admin", driver_id=None)
    assert store.users[user["user_id"]]["password_hash"] == "hashed:secret"
    await admin.update_user(user["user_id"], {"password": "again"})
    assert store.users[user["user_id"]]["password_hash"] == "hashed:again"
    with pytest.raises(Conflict):
        await admin.delete_user(user["user_id"], by_user_id=str(user["user_id"]))
    assert await admin.delete_user(user["user_id"], by_user_id=str(uuid.uuid4())) is True
