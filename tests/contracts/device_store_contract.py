"""The DeviceStore contract (usecases.ports.device_store): run on InMemoryDeviceStore in the unit suite and on
PostgresDeviceStore in the integration suite. `driver` exists in the store's world; fresh device ids per check."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from usecases.ports.admin_store import Conflict, MissingReference
from usecases.ports.device_store import DEVICE_COLUMNS, DeviceStore

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _digest() -> bytes:
    return hashlib.sha256(uuid.uuid4().bytes).digest()


async def a_device_is_registered_for_an_existing_driver_and_never_shows_its_digest(store: DeviceStore,
                                                                                    driver: str) -> None:
    device_id, digest = uuid.uuid4(), _digest()
    row = await store.create_device(device_id, driver, "phone", digest, T0)
    assert set(row) == set(DEVICE_COLUMNS)  # never the digest
    assert (row["device_id"], row["driver_id"], row["label"], row["created_at"]) == (device_id, driver, "phone", T0)
    assert row["revoked_at"] is None and row["last_seen_at"] is None and row["key_rotated_at"] is None
    assert dict(await store.get_device(device_id)) == dict(row)
    credential = await store.credential(device_id)
    assert (credential.device_id, credential.driver_id, credential.key_digest, credential.revoked) == (
        device_id, driver, digest, False)
    with pytest.raises(MissingReference, match="does not exist"):
        await store.create_device(uuid.uuid4(), f"nobody-{uuid.uuid4().hex[:8]}", "", _digest(), T0)
    assert await store.get_device(uuid.uuid4()) is None and await store.credential(uuid.uuid4()) is None


async def revocation_keeps_the_row_and_its_first_time_and_hides_it_from_the_default_list(store: DeviceStore,
                                                                                          driver: str) -> None:
    kept, revoked = uuid.uuid4(), uuid.uuid4()
    await store.create_device(kept, driver, "a", _digest(), T0)
    await store.create_device(revoked, driver, "b", _digest(), T0 + timedelta(seconds=1))
    first = await store.revoke_device(revoked, T0 + timedelta(minutes=1))
    again = await store.revoke_device(revoked, T0 + timedelta(minutes=2))
    assert first["revoked_at"] == again["revoked_at"] == T0 + timedelta(minutes=1)
    assert (await store.credential(revoked)).revoked is True
    assert await store.revoke_device(uuid.uuid4(), T0) is None
    total, rows = await store.list_devices(100, 0, driver, False)
    assert kept in {r["device_id"] for r in rows} and revoked not in {r["device_id"] for r in rows}
    total_all, rows_all = await store.list_devices(100, 0, driver, True)
    assert total_all == total + 1 and revoked in {r["device_id"] for r in rows_all}
    _, first_page = await store.list_devices(1, 0, driver, True)
    assert len(first_page) == 1


async def rotation_replaces_the_digest_of_an_active_device_only(store: DeviceStore, driver: str) -> None:
    device_id, new = uuid.uuid4(), _digest()
    await store.create_device(device_id, driver, "", _digest(), T0)
    row = await store.rotate_key(device_id, new, T0 + timedelta(hours=1))
    assert row["key_rotated_at"] == T0 + timedelta(hours=1)
    assert (await store.credential(device_id)).key_digest == new
    await store.revoke_device(device_id, T0 + timedelta(hours=2))
    with pytest.raises(Conflict, match="revoked"):
        await store.rotate_key(device_id, _digest(), T0 + timedelta(hours=3))
    assert await store.rotate_key(uuid.uuid4(), _digest(), T0) is None


async def last_seen_only_moves_forward(store: DeviceStore, driver: str) -> None:
    device_id = uuid.uuid4()
    await store.create_device(device_id, driver, "", _digest(), T0)
    await store.record_seen(device_id, T0 + timedelta(minutes=5))
    await store.record_seen(device_id, T0 + timedelta(minutes=3))  # another replica, late
    assert (await store.get_device(device_id))["last_seen_at"] == T0 + timedelta(minutes=5)
    await store.record_seen(uuid.uuid4(), T0)  # an unknown device: nothing, no error


CONTRACT = (
    a_device_is_registered_for_an_existing_driver_and_never_shows_its_digest,
    revocation_keeps_the_row_and_its_first_time_and_hides_it_from_the_default_list,
    rotation_replaces_the_digest_of_an_active_device_only,
    last_seen_only_moves_forward,
)
