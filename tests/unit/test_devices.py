"""Device credentials over the fakes (usecases.devices): a key is shown once and works for its driver; revoking or
rotating stops the old key and drops its cached credential; lookups come from the cache; last_seen is written at
most once per interval; a failed last_seen write never refuses readings."""

from __future__ import annotations

import uuid

import pytest

from storage.memory.cache import InMemoryResponseCache
from storage.memory.device_store import InMemoryDeviceStore
from storage.redis.keys import device_scope
from usecases.devices import CREDENTIAL, DeviceKeyRefused, Devices, DeviceTerms
from usecases.ports.admin_store import Conflict, MissingReference
from usecases.ports.clock import FakeClock

DRIVER = "d1"


def _devices(interval_s: float = 60.0) -> tuple[Devices, InMemoryDeviceStore, InMemoryResponseCache, FakeClock]:
    store, cache, clock = InMemoryDeviceStore(drivers={DRIVER, "d2"}), InMemoryResponseCache(), FakeClock()
    return Devices(store, cache, clock, DeviceTerms(last_seen_interval_s=interval_s)), store, cache, clock


async def test_a_registered_key_authenticates_as_its_driver_and_only_its_digest_is_stored():
    devices, store, _cache, _clock = _devices()
    issued = await devices.register(DRIVER, "dashboard unit")
    device = await devices.authenticate(issued.key)
    assert (device.device_id, device.driver_id) == (issued.row["device_id"], DRIVER)
    stored = store.rows[device.device_id]
    assert issued.key not in repr(stored) and "key_digest" not in issued.row


async def test_a_device_needs_an_existing_driver():
    devices, *_ = _devices()
    with pytest.raises(MissingReference):
        await devices.register("nobody", "")


async def test_repeated_lookups_are_served_from_the_cache():
    devices, store, _cache, _clock = _devices()
    issued = await devices.register(DRIVER, "")
    for _ in range(20):
        await devices.authenticate(issued.key)
    assert store.credential_reads == 1


async def test_a_wrong_secret_for_a_known_device_is_refused_from_the_cache_and_says_nothing_of_revocation():
    devices, store, _cache, _clock = _devices()
    issued = await devices.register(DRIVER, "")
    await devices.authenticate(issued.key)
    forged = issued.key[:-4] + ("AAAA" if not issued.key.endswith("AAAA") else "BBBB")
    with pytest.raises(DeviceKeyRefused, match="unknown device or wrong key"):
        await devices.authenticate(forged)
    assert store.credential_reads == 1
    await devices.revoke(issued.row["device_id"])
    with pytest.raises(DeviceKeyRefused, match="unknown device or wrong key"):
        await devices.authenticate(forged)


async def test_a_malformed_key_costs_no_lookup_and_an_unknown_device_is_refused():
    devices, store, _cache, _clock = _devices()
    with pytest.raises(DeviceKeyRefused, match="malformed"):
        await devices.authenticate("let-me-in")
    assert store.credential_reads == 0
    other = await _devices()[0].register(DRIVER, "")  # a key from another world: its device is unknown here
    with pytest.raises(DeviceKeyRefused, match="unknown device"):
        await devices.authenticate(other.key)


async def test_revoking_drops_the_cached_credential_and_refuses_the_key_from_then_on():
    devices, _store, cache, _clock = _devices()
    issued = await devices.register(DRIVER, "")
    await devices.authenticate(issued.key)
    scope = device_scope(issued.row["device_id"])
    assert (scope, CREDENTIAL) in cache.entries
    row = await devices.revoke(issued.row["device_id"])
    assert row["revoked_at"] is not None and (scope, CREDENTIAL) not in cache.entries
    with pytest.raises(DeviceKeyRefused, match="revoked"):
        await devices.authenticate(issued.key)
    assert await devices.revoke(uuid.uuid4()) is None


async def test_rotating_refuses_the_old_key_accepts_the_new_and_a_revoked_device_cannot_rotate():
    devices, *_ = _devices()
    issued = await devices.register(DRIVER, "")
    await devices.authenticate(issued.key)
    rotated = await devices.rotate(issued.row["device_id"])
    assert rotated.key != issued.key and rotated.row["key_rotated_at"] is not None
    with pytest.raises(DeviceKeyRefused, match="wrong key"):
        await devices.authenticate(issued.key)
    assert (await devices.authenticate(rotated.key)).driver_id == DRIVER
    await devices.revoke(issued.row["device_id"])
    with pytest.raises(Conflict, match="revoked"):
        await devices.rotate(issued.row["device_id"])
    assert await devices.rotate(uuid.uuid4()) is None


async def test_last_seen_is_written_at_most_once_per_interval_per_device():
    devices, store, _cache, clock = _devices(interval_s=60)
    first, second = await devices.register(DRIVER, ""), await devices.register("d2", "")
    for _ in range(10):
        await devices.authenticate(first.key)
        await devices.authenticate(second.key)
        clock.advance(5)  # 50 s in all: inside one interval
    assert store.seen_writes == 2
    clock.advance(11)
    await devices.authenticate(first.key)
    assert store.seen_writes == 3
    assert store.rows[first.row["device_id"]]["last_seen_at"].timestamp() * 1000 == clock.now_ms()


async def test_a_failed_last_seen_write_does_not_refuse_the_device():
    devices, store, _cache, _clock = _devices()
    issued = await devices.register(DRIVER, "")

    async def broken(*_args) -> None:
        raise ConnectionError("database away")

    store.record_seen = broken  # type: ignore[method-assign]
    assert (await devices.authenticate(issued.key)).driver_id == DRIVER


async def test_a_driver_change_drops_its_devices_cached_credentials_so_deactivation_refuses_them_at_once():
    devices, store, cache, _clock = _devices()
    first, second = [await devices.register(DRIVER, label) for label in ("a", "b")]
    others = await devices.register("d2", "")
    for issued in (first, second, others):
        await devices.authenticate(issued.key)
    store.inactive_drivers.add(DRIVER)
    await devices.authenticate(first.key)  # still cached: nothing told the cache yet
    await devices.driver_changed(DRIVER)
    for issued in (first, second):
        assert (device_scope(issued.row["device_id"]), CREDENTIAL) not in cache.entries
        with pytest.raises(DeviceKeyRefused, match="driver 'd1' is deactivated"):
            await devices.authenticate(issued.key)
    assert (device_scope(others.row["device_id"]), CREDENTIAL) in cache.entries  # another driver's stay cached
    store.inactive_drivers.discard(DRIVER)
    await devices.driver_changed(DRIVER)
    assert (await devices.authenticate(second.key)).driver_id == DRIVER
