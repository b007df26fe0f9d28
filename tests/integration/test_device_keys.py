"""Device credentials end to end on real PostgreSQL, Redis and Kafka (the API in-process, two or more "replicas"
= apps with their own caches): an admin registers a device and sees its key once; the device posts its driver's
readings and no one else's; bad keys are 401; revocation reaches another replica within the pub/sub latency and,
with its invalidation messages lost, within l1_cache_ttl_s; rotation; last_seen_at; cached lookups; the backdating
window and the admin import; driver tokens turned off (docs/SECURITY.md §6)."""

from __future__ import annotations

import asyncio
import time
import uuid
from contextlib import AsyncExitStack

import pytest

from storage.postgres.drivers import NewDriver, insert_missing_drivers
from storage.postgres.pool import connect, drop_database
from tests.integration.fixtures_db import create_migrated_database
from tests.integration.inprocess_api import api_settings, bearer, running_api
from tests.integration.serve_support import admin_token, driver_token, settings_with_topics

pytestmark = pytest.mark.timeout(300)
INGEST, IMPORT, DEVICES = "/api/v1/telematics/events", "/api/v1/admin/telematics/import", "/api/v1/admin/devices"
HOUR_MS = 3_600_000


class Replicas:
    def __init__(self, settings, apps: dict, drivers: list[str]) -> None:
        self.settings, self.apps, self.drivers = settings, apps, drivers

    def client(self, name: str = "a"):
        return self.apps[name][1]

    def resources(self, name: str = "a"):
        return self.apps[name][0].state.resources

    def admin(self) -> dict[str, str]:
        return bearer(admin_token(self.settings))

    async def register(self, driver_id: str, label: str = "test unit") -> dict:
        response = await self.client().post(DEVICES, json={"driver_id": driver_id, "label": label},
                                            headers=self.admin())
        assert response.status_code == 201, response.text
        return response.json()


@pytest.fixture(scope="module")
async def replicas(base_settings, kafka_bootstrap):
    url = await create_migrated_database(base_settings, prefix="autoins_dev")
    tag = uuid.uuid4().hex[:8]
    drivers = [f"dk-{tag}-{n}" for n in range(2)]
    settings = settings_with_topics(api_settings(base_settings, url), kafka_bootstrap, ingest_max_readings=20)
    conn = await connect(settings)
    try:
        await insert_missing_drivers(conn, [NewDriver(d, "Test", d, f"{d}@example.test", "UTC") for d in drivers])
    finally:
        await conn.close()
    variants = {"a": settings, "b": settings, "short_l1": settings.with_overrides(l1_cache_ttl_s=1.0),
                "no_driver_tokens": settings.with_overrides(ingest_driver_tokens=False)}
    try:
        async with AsyncExitStack() as stack:
            apps = {name: await stack.enter_async_context(running_api(s)) for name, s in variants.items()}
            yield Replicas(settings, apps, drivers)
    finally:
        await drop_database(url)


def reading(driver_id: str, age_ms: int = 1_000) -> dict:
    return {"event_id": str(uuid.uuid4()), "driver_id": driver_id, "ts": int(time.time() * 1000) - age_ms,
            "type": "position", "lat": 45.5, "lon": 7.2, "speed_kmh": 42.0, "accel_ms2": 0.3, "heading": 180.0}


def device(key: str) -> dict[str, str]:
    return {"X-Device-Key": key}


async def post(replicas: Replicas, headers: dict, readings: list[dict], name: str = "a", path: str = INGEST):
    return await replicas.client(name).post(path, json={"readings": readings}, headers=headers)


async def test_an_admin_registers_a_device_and_sees_its_key_this_once(replicas):
    driver = replicas.drivers[0]
    created = await replicas.register(driver, "dashboard unit")
    assert created["key"].startswith("adk1.") and created["status"] == "active" and created["driver_id"] == driver
    one = (await replicas.client().get(f"{DEVICES}/{created['device_id']}", headers=replicas.admin())).json()
    assert "key" not in one and one["label"] == "dashboard unit" and one["last_seen_at"] is None
    listed = (await replicas.client().get(DEVICES, params={"driver_id": driver}, headers=replicas.admin())).json()
    assert created["device_id"] in {d["device_id"] for d in listed["items"]}
    assert all("key" not in d for d in listed["items"])
    unknown = await replicas.client().post(DEVICES, json={"driver_id": "nobody-here"}, headers=replicas.admin())
    assert unknown.status_code == 422 and "does not exist" in unknown.json()["message"]


async def test_a_device_posts_its_drivers_readings_and_no_one_elses(replicas):
    mine, other = replicas.drivers
    key = (await replicas.register(mine))["key"]
    accepted = await post(replicas, device(key), [reading(mine), reading(mine)])
    assert accepted.status_code == 202 and accepted.json() == {"accepted": 2, "rejected": []}
    refused = await post(replicas, device(key), [reading(mine), reading(other)])
    assert refused.status_code == 403, refused.text
    assert refused.json()["detail"].startswith(f"a device may post only its driver's readings ({mine})")
    assert "nothing was accepted" in refused.json()["detail"]


@pytest.mark.parametrize("kind", ["malformed", "unknown_device", "wrong_secret", "empty_bearer_too"])
async def test_a_bad_device_key_is_refused_with_a_reason(replicas, kind):
    mine = replicas.drivers[0]
    key = (await replicas.register(mine))["key"]
    headers = {
        "malformed": device("adk1.not-a-key"),
        "unknown_device": device(f"adk1.{uuid.uuid4().hex}.{key.rsplit('.', 1)[1]}"),
        "wrong_secret": device(key[:-2] + ("AA" if not key.endswith("AA") else "BB")),
        "empty_bearer_too": {**device(key), **bearer(driver_token(replicas.settings, mine))},
    }[kind]
    response = await post(replicas, headers, [reading(mine)])
    expected = 400 if kind == "empty_bearer_too" else 401
    assert response.status_code == expected, response.text
    assert response.json()["detail"]


async def test_no_credentials_at_all_name_both_ways_in(replicas):
    response = await post(replicas, {}, [reading(replicas.drivers[0])])
    assert response.status_code == 401 and "X-Device-Key" in response.json()["detail"]


async def test_a_revocation_on_one_replica_is_refused_by_another_within_a_second(replicas):
    mine = replicas.drivers[0]
    created = await replicas.register(mine)
    assert (await post(replicas, device(created["key"]), [reading(mine)], name="b")).status_code == 202  # cached
    revoked = await replicas.client("a").post(f"{DEVICES}/{created['device_id']}/revoke", headers=replicas.admin())
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    started = time.monotonic()
    while (answer := await post(replicas, device(created["key"]), [], name="b")).status_code != 401:
        assert time.monotonic() - started < 1.0, "replica b still accepted the revoked key after 1 s"
        await asyncio.sleep(0.02)
    assert "revoked" in answer.json()["detail"]


async def test_with_its_invalidations_lost_a_replica_refuses_a_revoked_key_within_its_l1_ttl(replicas):
    """The stated bound when pub/sub fails: L1 entries live l1_cache_ttl_s (1 s here); L2 was moved by the INCR."""
    mine = replicas.drivers[0]
    created = await replicas.register(mine)
    short = replicas.resources("short_l1")
    short.cache_listener.cancel()  # this replica hears no invalidation from now on
    assert (await post(replicas, device(created["key"]), [], name="short_l1")).status_code == 422  # authenticated
    await replicas.client("a").post(f"{DEVICES}/{created['device_id']}/revoke", headers=replicas.admin())
    started = time.monotonic()
    while (await post(replicas, device(created["key"]), [], name="short_l1")).status_code != 401:
        assert time.monotonic() - started < 1.0 + 0.5, "the revoked key outlived the replica's L1 TTL"
        await asyncio.sleep(0.05)


async def test_rotation_stops_the_old_key_and_issues_a_new_one_and_a_revoked_device_cannot_rotate(replicas):
    mine = replicas.drivers[0]
    created = await replicas.register(mine)
    assert (await post(replicas, device(created["key"]), [reading(mine)], name="b")).status_code == 202
    rotated = await replicas.client().post(f"{DEVICES}/{created['device_id']}/rotate", headers=replicas.admin())
    assert rotated.status_code == 200 and rotated.json()["key"] != created["key"]
    assert rotated.json()["key_rotated_at"] is not None
    await asyncio.sleep(0.2)  # the other replica's invalidation message
    assert (await post(replicas, device(created["key"]), [reading(mine)], name="b")).status_code == 401
    assert (await post(replicas, device(rotated.json()["key"]), [reading(mine)], name="b")).status_code == 202
    await replicas.client().post(f"{DEVICES}/{created['device_id']}/revoke", headers=replicas.admin())
    again = await replicas.client().post(f"{DEVICES}/{created['device_id']}/rotate", headers=replicas.admin())
    assert again.status_code == 409 and "revoked" in again.json()["detail"]
    missing = await replicas.client().post(f"{DEVICES}/{uuid.uuid4()}/rotate", headers=replicas.admin())
    assert missing.status_code == 404


async def test_last_seen_is_recorded_once_per_interval_and_key_checks_come_from_the_cache(replicas):
    mine = replicas.drivers[0]
    created = await replicas.register(mine)
    cache = replicas.resources("a").cache
    assert (await post(replicas, device(created["key"]), [])).status_code == 422
    path = f"{DEVICES}/{created['device_id']}"
    first_seen = (await replicas.client().get(path, headers=replicas.admin())).json()["last_seen_at"]
    assert first_seen is not None
    loads = cache.stats()["loads"]
    for _ in range(20):
        assert (await post(replicas, device(created["key"]), [])).status_code == 422  # authenticated, then refused
    assert cache.stats()["loads"] == loads  # no database read for the key
    assert (await replicas.client().get(path, headers=replicas.admin())).json()["last_seen_at"] == first_seen


async def test_backdated_readings_are_refused_by_reason_except_through_the_admin_import(replicas):
    mine = replicas.drivers[0]
    key = (await replicas.register(mine))["key"]
    window_ms = replicas.settings.ingest_max_backdate_s * 1000
    old = reading(mine, age_ms=window_ms + HOUR_MS)
    for headers in (device(key), bearer(driver_token(replicas.settings, mine)), replicas.admin()):
        response = await post(replicas, headers, [reading(mine), old])
        assert response.status_code == 202, response.text
        assert response.json()["accepted"] == 1
        rejected = [(r["index"], r["reason"], r["field"]) for r in response.json()["rejected"]]
        assert rejected == [(1, "ts_backdated", "ts")]
    imported = await post(replicas, replicas.admin(), [old], path=IMPORT)
    assert imported.status_code == 202 and imported.json() == {"accepted": 1, "rejected": []}
    ancient = await post(replicas, replicas.admin(), [reading(mine, age_ms=20 * 30 * 24 * HOUR_MS)], path=IMPORT)
    assert ancient.status_code == 422 and ancient.json()["rejected"][0]["reason"] == "ts_before_retention"
    assert (await post(replicas, bearer(driver_token(replicas.settings, mine)), [old], path=IMPORT)).status_code == 403
    assert (await post(replicas, device(key), [old], path=IMPORT)).status_code == 401


async def test_where_driver_tokens_are_off_a_driver_is_refused_and_devices_and_admins_post(replicas):
    mine = replicas.drivers[0]
    key = (await replicas.register(mine))["key"]
    refused = await post(replicas, bearer(driver_token(replicas.settings, mine)), [reading(mine)],
                         name="no_driver_tokens")
    assert refused.status_code == 403 and "X-Device-Key" in refused.json()["detail"]
    assert (await post(replicas, device(key), [reading(mine)], name="no_driver_tokens")).status_code == 202
    assert (await post(replicas, replicas.admin(), [reading(mine)], name="no_driver_tokens")).status_code == 202


async def test_a_deactivated_driver_s_devices_are_refused_on_every_replica_and_post_again_once_reactivated(replicas):
    other = replicas.drivers[1]
    key = (await replicas.register(other))["key"]
    assert (await post(replicas, device(key), [reading(other)], name="b")).status_code == 202  # cached on b
    patch = f"/api/v1/admin/drivers/{other}"
    try:
        off = await replicas.client("a").patch(patch, json={"is_active": False}, headers=replicas.admin())
        assert off.status_code == 200 and off.json()["is_active"] is False, off.text
        started = time.monotonic()
        while (refused := await post(replicas, device(key), [reading(other)], name="b")).status_code == 202:
            assert time.monotonic() - started < 1.0, "replica b still accepted a deactivated driver's device after 1 s"
            await asyncio.sleep(0.05)
        assert refused.status_code == 401 and "is deactivated" in refused.json()["detail"], refused.text
    finally:
        on = await replicas.client("a").patch(patch, json={"is_active": True}, headers=replicas.admin())
        assert on.status_code == 200, on.text
    started = time.monotonic()
    while (accepted := await post(replicas, device(key), [reading(other)], name="b")).status_code != 202:
        assert time.monotonic() - started < 1.0, f"a reactivated driver's device is still refused: {accepted.text}"
        await asyncio.sleep(0.05)
