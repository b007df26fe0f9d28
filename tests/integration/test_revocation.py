"""Revocation across replicas (docs/SECURITY.md §8): two API apps (two replicas' worth) over one PostgreSQL and
one Redis. Disable, role change, driver reassignment, password change, delete and logout end a token on both
replicas within the pub/sub latency (asserted ≤ 1 s), and within `session_check_ttl_s` when no message arrives."""

from __future__ import annotations

import asyncio
import time
import uuid
from contextlib import AsyncExitStack

import pytest

from storage.postgres.pool import connect
from tests.integration.inprocess_api import bearer, drop_seeded, login, running_api, seeded_database

pytestmark = pytest.mark.timeout(180)
TTL_S = 2.0  # session_check_ttl_s here: the bound when an invalidation is lost
PUBSUB_BOUND_S = 1.0


@pytest.fixture(scope="module")
async def replicas(base_settings):
    settings = await seeded_database(base_settings, drivers=1)
    settings = settings.with_overrides(session_check_ttl_s=TTL_S)
    try:
        async with AsyncExitStack() as stack:
            a = await stack.enter_async_context(running_api(settings))
            b = await stack.enter_async_context(running_api(settings))
            for app, _ in (a, b):
                await asyncio.wait_for(app.state.resources.cache.listening.wait(), 10)
            admin = await login(a[1], "admin")
            yield settings, a[1], b[1], admin
    finally:
        await drop_seeded(settings)


async def _new_login(client, admin: str) -> tuple[str, str, str]:
    """A fresh driver with a login of its own: (user id, username, password)."""
    driver_id = f"rev-{uuid.uuid4().hex[:8]}"
    response = await client.post("/api/v1/admin/drivers", headers=bearer(admin), json={
        "driver_id": driver_id, "first_name": "R", "last_name": "V", "email": f"{driver_id}@example.test"})
    assert response.status_code == 201, response.text
    password = f"pw-{uuid.uuid4().hex}"
    response = await client.post("/api/v1/admin/users", headers=bearer(admin), json={
        "username": driver_id, "password": password, "role": "driver", "driver_id": driver_id})
    assert response.status_code == 201, response.text
    return response.json()["user_id"], driver_id, password


async def _status(client, token: str) -> int:
    return (await client.get("/api/v1/drivers/me", headers=bearer(token))).status_code


async def _seconds_until_refused(clients, token: str, limit_s: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < limit_s:
        if all([await _status(c, token) == 401 for c in clients]):
            return time.monotonic() - started
        await asyncio.sleep(0.02)
    raise AssertionError(f"the token still worked on some replica after {limit_s} s")


async def _second_driver(client, admin: str) -> str:
    driver_id = f"rev-{uuid.uuid4().hex[:8]}"
    response = await client.post("/api/v1/admin/drivers", headers=bearer(admin), json={
        "driver_id": driver_id, "first_name": "O", "last_name": "T", "email": f"{driver_id}@example.test"})
    assert response.status_code == 201, response.text
    return driver_id


@pytest.mark.parametrize("change", ["disable", "role", "reassign", "password", "delete"])
async def test_an_admin_change_ends_the_users_tokens_on_every_replica_within_the_pubsub_bound(replicas, change):
    _, a, b, admin = replicas
    user_id, username, password = await _new_login(a, admin)
    token = await login(b, username, password)
    assert await _status(a, token) == 200 and await _status(b, token) == 200  # both replicas hold the version
    path = f"/api/v1/admin/users/{user_id}"
    body = {"disable": {"is_active": False}, "role": {"role": "admin", "driver_id": None},
            "password": {"password": f"new-{uuid.uuid4().hex}"}}.get(change)
    if change == "reassign":
        body = {"driver_id": await _second_driver(a, admin)}
    response = await (a.delete(path, headers=bearer(admin)) if change == "delete"
                      else a.patch(path, json=body, headers=bearer(admin)))
    assert response.status_code in (200, 204), response.text
    took_s = await _seconds_until_refused((a, b), token, PUBSUB_BOUND_S)
    refused = await b.get("/api/v1/drivers/me", headers=bearer(token))
    assert "revoked" in refused.json()["detail"], refused.text
    print(f"{change}: refused on both replicas after {took_s * 1000:.0f} ms")


async def test_a_change_that_does_not_touch_access_keeps_the_token(replicas):
    _, a, b, admin = replicas
    user_id, username, password = await _new_login(a, admin)
    token = await login(a, username, password)
    response = await a.patch(f"/api/v1/admin/users/{user_id}", json={}, headers=bearer(admin))
    assert response.status_code == 200
    await asyncio.sleep(0.3)
    assert await _status(a, token) == 200 and await _status(b, token) == 200


async def test_logout_ends_every_session_of_the_user_and_a_new_login_works(replicas):
    _, a, b, admin = replicas
    _, username, password = await _new_login(a, admin)
    phone, laptop = await login(a, username, password), await login(b, username, password)
    assert await _status(b, phone) == 200
    response = await b.post("/api/v1/auth/logout", headers=bearer(phone))
    assert response.status_code == 204, response.text
    await _seconds_until_refused((a, b), phone, PUBSUB_BOUND_S)
    await _seconds_until_refused((a, b), laptop, PUBSUB_BOUND_S)
    again = await b.post("/api/v1/auth/logout", headers=bearer(phone))
    assert again.status_code == 401 and "revoked" in again.json()["detail"]
    assert (await a.post("/api/v1/auth/logout")).status_code == 401
    fresh = await login(a, username, password)
    assert await _status(a, fresh) == 200 and await _status(b, fresh) == 200


async def test_without_the_message_a_revocation_still_takes_effect_within_the_ttl(replicas):
    settings, a, b, admin = replicas
    user_id, username, password = await _new_login(a, admin)
    token = await login(a, username, password)
    assert await _status(a, token) == 200 and await _status(b, token) == 200
    conn = await connect(settings)  # the version moves in PostgreSQL, and nobody is told
    try:
        await conn.execute("INSERT INTO token_versions (user_id, version) VALUES ($1, 1)", user_id)
    finally:
        await conn.close()
    took_s = await _seconds_until_refused((a, b), token, TTL_S + 1.0)
    print(f"lost message: refused on both replicas after {took_s:.2f} s (ttl {TTL_S} s)")
