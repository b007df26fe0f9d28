"""The AdminStore contract (usecases.ports.admin_store): run on InMemoryAdminStore in the unit suite and on
PostgresAdminStore in the integration suite. Fresh ids per check."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

import pytest

from usecases.ports.admin_store import AdminStore, Conflict, MissingReference


def _driver() -> str:
    return f"a{uuid.uuid4().hex[:12]}"


def _fields(driver_id: str) -> dict:
    return {"first_name": "Ada", "last_name": "Lovelace", "email": f"{driver_id}@example.com"}


def _policy(driver_id: str, number: str) -> dict:
    return {"driver_id": driver_id, "policy_number": number, "status": "active", "currency": "USD",
            "base_premium": Decimal("750.00"),
            "per_km_rate": Decimal("0.0100"), "effective_date": date(2026, 1, 1), "expiration_date": date(2027, 1, 1)}


async def a_driver_is_created_read_changed_and_deleted(store: AdminStore) -> None:
    driver = _driver()
    created = await store.create_driver(driver, _fields(driver))
    assert (created["driver_id"], created["timezone"], created["is_active"]) == (driver, "UTC", True)
    changed = await store.update_driver(driver, {"first_name": "Grace"})
    assert changed["first_name"] == "Grace" and changed["updated_at"] >= created["updated_at"]
    assert (await store.get_driver(driver))["first_name"] == "Grace"
    assert await store.delete_driver(driver) is True
    assert await store.get_driver(driver) is None and await store.delete_driver(driver) is False
    assert await store.update_driver(driver, {"first_name": "x"}) is None


async def a_taken_driver_id_or_email_is_a_conflict(store: AdminStore) -> None:
    driver, other = _driver(), _driver()
    await store.create_driver(driver, _fields(driver))
    with pytest.raises(Conflict, match="already exists"):
        await store.create_driver(driver, _fields(other))
    with pytest.raises(Conflict, match="email"):
        await store.create_driver(other, _fields(driver))


async def a_policy_needs_its_driver_and_a_free_number_and_blocks_the_drivers_deletion(store: AdminStore) -> None:
    driver = _driver()
    with pytest.raises(MissingReference):
        await store.create_policy(_policy(driver, f"P-{driver}"))
    await store.create_driver(driver, _fields(driver))
    policy = await store.create_policy(_policy(driver, f"P-{driver}"))
    assert policy["current_premium"] == Decimal("750.00") and policy["status"] == "active"
    assert policy["vehicle_use"] == "personal"  # the column's default (migration 0016)
    with pytest.raises(Conflict):
        await store.create_policy(_policy(driver, f"P-{driver}"))
    with pytest.raises(Conflict):
        await store.delete_driver(driver)
    total, rows = await store.list_policies(10, 0, None, driver)
    assert total == 1 and rows[0]["policy_id"] == policy["policy_id"]
    assert (await store.update_policy(policy["policy_id"], {"status": "cancelled"}))["status"] == "cancelled"
    assert (await store.update_policy(policy["policy_id"], {"vehicle_use": "rideshare"}))["vehicle_use"] == "rideshare"
    assert (await store.get_policy(policy["policy_id"]))["vehicle_use"] == "rideshare"
    assert await store.delete_policy(policy["policy_id"]) == driver
    assert await store.delete_policy(policy["policy_id"]) is None
    assert await store.delete_driver(driver) is True


async def a_login_never_shows_its_hash_and_one_driver_has_one_login(store: AdminStore) -> None:
    driver = _driver()
    await store.create_driver(driver, _fields(driver))
    user = await store.create_user(username=f"u-{driver}", password_hash="h", role="driver", driver_id=driver)
    assert "password_hash" not in user and user["driver_id"] == driver
    with pytest.raises(Conflict):
        await store.create_user(username=f"u-{driver}", password_hash="h", role="admin", driver_id=None)
    with pytest.raises(Conflict):
        await store.create_user(username=f"v-{driver}", password_hash="h", role="driver", driver_id=driver)
    with pytest.raises(MissingReference):
        await store.create_user(username=f"w-{driver}", password_hash="h", role="driver", driver_id=_driver())
    assert (await store.update_user(user["user_id"], {"is_active": False}))["is_active"] is False
    assert "password_hash" not in await store.get_user(user["user_id"])
    assert await store.delete_user(user["user_id"]) is True and await store.get_user(user["user_id"]) is None
    assert await store.delete_user(user["user_id"]) is False


CONTRACT = [
    a_driver_is_created_read_changed_and_deleted,
    a_taken_driver_id_or_email_is_a_conflict,
    a_policy_needs_its_driver_and_a_free_number_and_blocks_the_drivers_deletion,
    a_login_never_shows_its_hash_and_one_driver_has_one_login,
]
