"""Who may call what: every REST endpoint × anonymous / driver / other driver / admin, token forgeries, the
login rate limit, and 100 concurrent logins of one demo user (the plan's locustfile does exactly that)."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import jwt
import jwt.warnings
import pytest
from fastapi.routing import iter_route_contexts

from deployments.api.auth import issue_token, sign_claims
from storage.redis.client import create_redis
from storage.redis.keys import login_pair_keys
from tests.integration.inprocess_api import (
    FakeRiskModel,
    bearer,
    client_for,
    drop_seeded,
    insert_trips,
    login,
    open_claim,
    running_api,
    seeded_database,
)

D1, D2, D3 = "driver0001", "driver0002", "driver0003"
ROLES = ("anonymous", "driver", "other_driver", "admin")


@dataclass
class World:
    app: object
    client: object
    settings: object
    tokens: dict[str, str | None]
    trip_id: uuid.UUID
    policy_id: str
    user_id: str
    device_id: str
    claim_id: uuid.UUID

    async def admin(self, method: str, path: str, body: dict | None = None) -> dict:
        response = await self.client.request(method, path, json=body, headers=bearer(self.tokens["admin"]))
        assert response.status_code < 300, response.text
        return response.json()


@pytest.fixture(scope="module")
async def world(base_settings):
    settings = await seeded_database(base_settings, drivers=3)
    trip_id = (await insert_trips(settings, D1, 3))[0]
    try:
        async with running_api(settings) as (app, client):
            tokens = {"anonymous": None, "driver": await login(client, D1), "other_driver": await login(client, D2),
                      "admin": await login(client, "admin")}
            headers = bearer(tokens["admin"])
            policy = (await client.get("/api/v1/admin/policies", params={"driver_id": D1}, headers=headers)).json()
            users = (await client.get("/api/v1/admin/users", params={"page_size": 100}, headers=headers)).json()
            user_id = next(u["user_id"] for u in users["items"] if u["username"] == D3)
            device = (await client.post("/api/v1/admin/devices", json={"driver_id": D3}, headers=headers)).json()
            yield World(app, client, settings, tokens, trip_id, policy["items"][0]["policy_id"], user_id,
                        device["device_id"], await open_claim(settings, D1))
    finally:
        await drop_seeded(settings)


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _new_driver() -> dict:
    driver_id = _unique("authz")
    return {"driver_id": driver_id, "first_name": "Test", "last_name": "Driver", "email": f"{driver_id}@example.test"}


def _new_policy() -> dict:
    return {"driver_id": D3, "policy_number": _unique("POL"), "base_premium": "500.00",
            "effective_date": "2026-01-01", "expiration_date": "2027-01-01"}


def _new_user() -> dict:
    return {"username": _unique("admin"), "password": "a-long-password", "role": "admin"}


async def _victim(world: World, kind: str) -> str:
    """A resource that exists only to be deleted by the admin case."""
    if kind == "driver":
        return (await world.admin("POST", "/api/v1/admin/drivers", _new_driver()))["driver_id"]
    if kind == "policy":
        return (await world.admin("POST", "/api/v1/admin/policies", _new_policy()))["policy_id"]
    if kind == "device":
        return (await world.admin("POST", "/api/v1/admin/devices", {"driver_id": D3}))["device_id"]
    return (await world.admin("POST", "/api/v1/admin/users", _new_user()))["user_id"]


OWN = {"anonymous": 401, "driver": 200, "other_driver": 200, "admin": 404}  # /me: admin has no profile
BY_ID = {"anonymous": 401, "driver": 200, "other_driver": 404, "admin": 200}  # D1's data by id
ADMIN_READ = {"anonymous": 401, "driver": 403, "other_driver": 403, "admin": 200}


def _admin_only(ok: int) -> dict[str, int]:
    return {**ADMIN_READ, "admin": ok}


# (method, path template, body factory, expected status per role). Placeholders: {d1} {trip} {policy} {user}
# and {victim_driver|policy|user} (created right before the admin's call).
CASES: list[tuple[str, str, Callable[[], dict] | None, dict[str, int]]] = [
    ("GET", "/api/v1/drivers/me", None, OWN),
    ("GET", "/api/v1/drivers/me/trips", None, OWN),
    ("GET", "/api/v1/risk/me/score", None, OWN),
    ("GET", "/api/v1/risk/me/history", None, OWN),
    ("GET", "/api/v1/policies/me", None, OWN),
    ("GET", "/api/v1/policies/me/quote", None, OWN),
    ("GET", "/api/v1/drivers/{d1}", None, BY_ID),
    ("GET", "/api/v1/drivers/{d1}/trips", None, BY_ID),
    ("GET", "/api/v1/trips/{trip}", None, BY_ID),
    ("GET", "/api/v1/trips/{trip}/events", None, BY_ID),
    ("GET", "/api/v1/trips/{trip}/route", None, BY_ID),
    ("GET", "/api/v1/risk/{d1}/score", None, BY_ID),
    ("GET", "/api/v1/risk/{d1}/history", None, BY_ID),
    ("GET", "/api/v1/policies/{d1}", None, BY_ID),
    ("GET", "/api/v1/policies/{d1}/quote", None, BY_ID),
    # privacy (docs/PRIVACY.md): a consent is the driver's own; "full" is D1's mode already, so nothing changes;
    # marking a trip private in full mode is 409 for its driver, an admin may not act for them (403)
    ("GET", "/api/v1/drivers/me/privacy", None, OWN),
    ("PUT", "/api/v1/drivers/me/privacy", lambda: {"mode": "full"}, OWN),
    ("GET", "/api/v1/drivers/{d1}/privacy", None, BY_ID),
    ("PUT", "/api/v1/drivers/{d1}/privacy", lambda: {"mode": "full"}, {**BY_ID, "admin": 403}),
    ("POST", "/api/v1/trips/{trip}/private", None, {**BY_ID, "driver": 409, "admin": 403}),
    ("POST", "/api/v1/admin/drivers/{victim_driver}/erasure", lambda: {"reason": "authz"}, ADMIN_READ),
    ("GET", "/api/v1/claims/me", None, OWN),
    ("GET", "/api/v1/claims/{claim}", None, BY_ID),
    # a fresh claim of D1 per role: only its driver answers; an admin reads it but may not answer for them
    ("POST", "/api/v1/claims/{victim_claim}/confirmation", lambda: {"confirmed": True},
     {"anonymous": 401, "driver": 200, "other_driver": 404, "admin": 403}),
    ("GET", "/api/v1/admin/claims", None, ADMIN_READ),
    ("GET", "/api/v1/admin/claims/{claim}", None, ADMIN_READ),
    ("GET", "/api/v1/admin/dashboard", None, ADMIN_READ),
    ("GET", "/api/v1/admin/analytics/risk-distribution", None, ADMIN_READ),
    ("GET", "/api/v1/admin/analytics/trips-daily", None, ADMIN_READ),
    ("GET", "/api/v1/admin/analytics/drift", None, ADMIN_READ),
    ("GET", "/api/v1/admin/analytics/cohorts", None, ADMIN_READ),
    ("GET", "/api/v1/admin/analytics/calibration", None, ADMIN_READ),
    ("GET", "/api/v1/admin/drivers", None, ADMIN_READ),
    ("GET", "/api/v1/admin/drivers/{d1}", None, ADMIN_READ),
    ("POST", "/api/v1/admin/drivers", _new_driver, _admin_only(201)),
    ("PATCH", "/api/v1/admin/drivers/{d3}", lambda: {"phone": "+44 20 7946 0000"}, ADMIN_READ),
    ("DELETE", "/api/v1/admin/drivers/{victim_driver}", None, _admin_only(204)),
    ("GET", "/api/v1/admin/policies", None, ADMIN_READ),
    ("GET", "/api/v1/admin/policies/{policy}", None, ADMIN_READ),
    ("POST", "/api/v1/admin/policies", _new_policy, _admin_only(201)),
    ("PATCH", "/api/v1/admin/policies/{policy}", lambda: {"status": "active"}, ADMIN_READ),
    ("DELETE", "/api/v1/admin/policies/{victim_policy}", None, _admin_only(204)),
    ("GET", "/api/v1/admin/users", None, ADMIN_READ),
    ("GET", "/api/v1/admin/users/{user}", None, ADMIN_READ),
    ("POST", "/api/v1/admin/users", _new_user, _admin_only(201)),
    ("PATCH", "/api/v1/admin/users/{user}", lambda: {"is_active": True}, ADMIN_READ),
    ("DELETE", "/api/v1/admin/users/{victim_user}", None, _admin_only(204)),
    ("GET", "/api/v1/admin/devices", None, ADMIN_READ),
    ("POST", "/api/v1/admin/devices", lambda: {"driver_id": D3, "label": "authz"}, _admin_only(201)),
    ("GET", "/api/v1/admin/devices/{device}", None, ADMIN_READ),
    ("POST", "/api/v1/admin/devices/{device}/rotate", None, ADMIN_READ),
    ("POST", "/api/v1/admin/devices/{victim_device}/revoke", None, ADMIN_READ),
    # no valid reading (so nothing reaches Kafka): the admin gets past authorization to the body's 422
    ("POST", "/api/v1/admin/telematics/import", lambda: {"readings": [1]}, _admin_only(422)),
    # disputes (issue 16): only the trip's driver files one (an admin too is a 404; the driver's is "no such
    # episode", the trip having none); deciding is admin-only (an unknown dispute: past authorization to the 404)
    ("GET", "/api/v1/drivers/me/disputes", None, OWN),
    ("GET", "/api/v1/drivers/me/premium-ledger", None, OWN),
    ("GET", "/api/v1/drivers/{d1}/disputes", None, BY_ID),
    ("GET", "/api/v1/drivers/{d1}/premium-ledger", None, BY_ID),
    ("POST", "/api/v1/trips/{trip}/disputes", lambda: {"episode_id": str(uuid.uuid4()), "reason": "authz"},
     {"anonymous": 401, "driver": 404, "other_driver": 404, "admin": 404}),
    ("GET", "/api/v1/admin/disputes", None, ADMIN_READ),
    ("GET", "/api/v1/admin/disputes/{dispute}", None, _admin_only(404)),
    ("POST", "/api/v1/admin/disputes/{dispute}/decision", lambda: {"decision": "accepted", "note": "authz"},
     _admin_only(404)),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("method", "template", "body", "expected"), CASES,
                         ids=[f"{m} {t}" for m, t, _, _ in CASES])
async def test_authorization_matrix(world, role, method, template, body, expected):
    values = {"d1": D1, "d3": D3, "trip": world.trip_id, "policy": world.policy_id, "user": world.user_id,
              "device": world.device_id, "claim": world.claim_id, "dispute": uuid.uuid4()}
    if "{victim_claim}" in template:
        values["victim_claim"] = await open_claim(world.settings, D1)
    for kind in ("driver", "policy", "user", "device"):
        if f"{{victim_{kind}}}" in template:
            values[f"victim_{kind}"] = await _victim(world, kind) if role == "admin" else str(uuid.uuid4())[:8]
    token = world.tokens[role]
    response = await world.client.request(method, template.format(**values), json=body() if body else None,
                                          headers=bearer(token) if token else {})
    assert response.status_code == expected[role], response.text
    if response.status_code == 401:
        assert response.headers["www-authenticate"] == "Bearer"
    if response.status_code == 404 and role == "other_driver":
        assert "not found" in response.json()["detail"]  # the same answer as for an unknown id


def test_every_rest_route_is_in_the_matrix(world):
    covered = {(m, t.replace("{d1}", "{driver_id}").replace("{d3}", "{driver_id}")) for m, t, _, _ in CASES}
    normalized = {(m, _templated(t)) for m, t in covered}
    platform = {"/api/v1/telematics/events", "/health/live", "/health/ready", "/metrics"}
    checked = 0
    # FastAPI ≥ 0.137 keeps included routers as a tree in app.routes: walking app.routes found no route at all
    for route in iter_route_contexts(world.app.routes):
        path = route.path or ""
        # login and logout have tests of their own (logout would revoke the matrix's tokens: test_revocation.py)
        if not path.startswith("/api/v1/") or path in platform or path in ("/api/v1/auth/login", "/api/v1/auth/logout"):
            continue
        for method in route.methods - {"HEAD"}:
            assert (method, _templated(path)) in normalized, f"{method} {path} is not in the matrix"
            checked += 1
    assert checked == len(CASES), (checked, len(CASES))


def _templated(path: str) -> str:
    import re

    return re.sub(r"\{[^}]+\}", "{}", path)


# -- tokens -----------------------------------------------------------------------------------------


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _forged_tokens(world: World) -> dict[str, str]:
    settings = world.settings
    secret = settings.jwt_secret_key.get_secret_value()
    claims = {"sub": str(uuid.uuid4()), "role": "admin", "driver_id": None, "ver": 0, "iat": int(time.time()),
              "exp": int(time.time()) + 600}
    valid = world.tokens["driver"]
    head, _payload, signature = valid.split(".")
    tampered_payload = _b64({**jwt.decode(valid, options={"verify_signature": False}), "role": "admin"})
    return {
        "tampered": f"{head}.{tampered_payload}.{signature}",
        "expired": issue_token(settings, user_id="u", role="driver", driver_id=D1,
                               now_s=time.time() - settings.jwt_expire_minutes * 60 - 60),
        "alg_none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}.",
        "hs512_same_key": _hs512(claims, secret),
        "wrong_secret": jwt.encode(claims, "another-secret-of-decent-length-0123456789", algorithm="HS256"),
        "no_exp": jwt.encode({k: v for k, v in claims.items() if k != "exp"}, secret, algorithm="HS256"),
        "other_audience": sign_claims(settings, {**claims, "aud": "another-service"}),
        "other_issuer": sign_claims(settings, {**claims, "iss": "someone-else"}),
        "no_audience": jwt.encode(claims, secret, algorithm="HS256"),  # right key, no iss/aud
        "garbled": "not.a.jwt",
    }


def _hs512(claims: dict, secret: str) -> str:
    with warnings.catch_warnings():  # the dev secret is short for HS512; the forgery needs it anyway
        warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)
        return jwt.encode(claims, secret, algorithm="HS512")


FORGERIES = ("tampered", "expired", "alg_none", "hs512_same_key", "wrong_secret", "no_exp", "other_audience",
             "other_issuer", "no_audience", "garbled")


@pytest.mark.parametrize("kind", FORGERIES)
async def test_a_forged_or_expired_token_is_401_with_a_bearer_challenge(world, kind):
    token = _forged_tokens(world)[kind]
    for path in ("/api/v1/drivers/me", "/api/v1/admin/dashboard"):
        response = await world.client.get(path, headers=bearer(token))
        assert response.status_code == 401, (kind, response.text)
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["detail"].startswith(("token expired", "token rejected"))


@pytest.mark.parametrize("header", ["", "Bearer", "Basic dXNlcjpwYXNz", "Bearer  ", "bearer"])
async def test_a_missing_or_garbled_authorization_header_is_401(world, header):
    response = await world.client.get("/api/v1/drivers/me", headers={"Authorization": header} if header else {})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["detail"]


async def test_a_valid_token_still_works_after_the_forgeries(world):
    response = await world.client.get("/api/v1/drivers/me", headers=bearer(world.tokens["driver"]))
    assert response.status_code == 200 and response.json()["driver_id"] == D1


# -- login ------------------------------------------------------------------------------------------


async def _clear_failures(world: World, usernames: list[str], clients: list[str]) -> None:
    redis = create_redis(world.settings)
    try:
        keys = [k for u in usernames for c in clients for k in login_pair_keys(c, u)]
        await redis.delete(*keys)
    finally:
        await redis.aclose()


async def test_repeated_bad_passwords_delay_that_client_and_user_while_others_still_log_in(world):
    limit = world.settings.login_max_failures
    attacker, bystander = "10.9.0.1", "10.9.0.2"
    await _clear_failures(world, [D3, D2], [attacker, bystander])
    async with client_for(world.app, attacker) as bad, client_for(world.app, bystander) as good:
        for _ in range(limit):
            response = await bad.post("/api/v1/auth/login", json={"username": D3, "password": "wrong"})
            assert response.status_code == 401 and response.json()["detail"] == "invalid username or password"
        limited = await bad.post("/api/v1/auth/login", json={"username": D3, "password": "password0003"})
        assert limited.status_code == 429, limited.text  # even the right password: the pair waits 2^1 s
        assert limited.headers["retry-after"] == "2"
        # the same client's other users, and the attacked user from elsewhere, are not held
        assert (await bad.post("/api/v1/auth/login", json={"username": D2, "password": "password0002"})
                ).status_code == 200
        assert (await good.post("/api/v1/auth/login", json={"username": D3, "password": "password0003"})
                ).status_code == 200
    await _clear_failures(world, [D3, D2], [attacker, bystander])


async def test_failures_from_many_addresses_never_lock_the_victim_out(world):
    """The probe locked the admin out with 25 wrong passwords from anywhere; now nothing counts per username."""
    limit = world.settings.login_max_failures
    clients = [f"10.9.1.{i}" for i in range(6)]
    await _clear_failures(world, [D3], clients)
    for address in clients[:-1]:
        async with client_for(world.app, address) as client:
            for _ in range(limit):
                assert (await client.post("/api/v1/auth/login", json={"username": D3, "password": "wrong"})
                        ).status_code == 401
    async with client_for(world.app, clients[-1]) as own:
        response = await own.post("/api/v1/auth/login", json={"username": D3, "password": "password0003"})
    assert response.status_code == 200, response.text
    await _clear_failures(world, [D3], clients)


async def test_a_burst_of_concurrent_guesses_gets_only_the_free_failures_checked(world):
    """Check and count are one Redis script: a burst cannot pass before the first failure is counted."""
    limit, attacker = world.settings.login_max_failures, "10.9.2.1"
    await _clear_failures(world, [D3], [attacker])
    async with client_for(world.app, attacker) as bad:
        responses = await asyncio.gather(*(
            bad.post("/api/v1/auth/login", json={"username": D3, "password": f"guess-{i}"}) for i in range(40)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [401] * limit + [429] * (40 - limit), statuses
    assert all(r.headers["retry-after"] for r in responses if r.status_code == 429)
    await _clear_failures(world, [D3], [attacker])


async def test_an_unknown_user_gets_the_same_answer_as_a_wrong_password(world):
    async with client_for(world.app, "10.9.0.3") as client:
        unknown = await client.post("/api/v1/auth/login", json={"username": "nobody-here", "password": "x"})
    assert unknown.status_code == 401 and unknown.json()["detail"] == "invalid username or password"
    await _clear_failures(world, ["nobody-here"], ["10.9.0.3"])


async def test_a_disabled_login_is_refused_with_a_message(world):
    user = await world.admin("POST", "/api/v1/admin/users", _new_user())
    await world.admin("PATCH", f"/api/v1/admin/users/{user['user_id']}", {"is_active": False})
    response = await world.client.post("/api/v1/auth/login",
                                       json={"username": user["username"], "password": "a-long-password"})
    assert response.status_code == 403 and "disabled" in response.json()["detail"]


async def test_hundred_concurrent_logins_of_one_demo_user_all_succeed_for_clients_honouring_retry_after(world):
    """100 devices log in at once: the replica checks `login_verify_concurrency` passwords at a time, queues
    `login_verify_queue` more and answers the rest 429 with Retry-After; each client that waits gets in."""
    async def device(n: int) -> tuple[httpx.Response, int]:
        async with client_for(world.app, f"10.9.3.{n}") as client:
            for attempt in range(10):
                response = await client.post("/api/v1/auth/login", json={"username": D1, "password": "password0001"})
                if response.status_code != 429:
                    return response, attempt
                await asyncio.sleep(int(response.headers["retry-after"]))
        return response, attempt

    started = time.perf_counter()
    results = await asyncio.gather(*(device(n) for n in range(100)))
    elapsed_s = time.perf_counter() - started
    responses = [r for r, _ in results]
    assert [r.status_code for r in responses] == [200] * 100
    claims = jwt.decode(responses[0].json()["access_token"], options={"verify_signature": False})
    assert claims["role"] == "driver" and claims["driver_id"] == D1 and claims["exp"] > claims["iat"]
    retried = sum(1 for _, attempts in results if attempts)
    print(f"100 concurrent logins in {elapsed_s:.2f} s, {retried} after a 429")


async def test_without_a_risk_model_the_prior_is_503_with_a_message_and_the_rest_still_answers(world):
    token = world.tokens["other_driver"]  # driver0002 has no score yet: the prior is needed
    await world.app.state.resources.cache.invalidate([D2])  # not even a cached prior (L2 is shared)
    async with running_api(world.settings, FakeRiskModel(available=False)) as (_, client):
        score = await client.get("/api/v1/risk/me/score", headers=bearer(token))
        quote = await client.get("/api/v1/policies/me/quote", headers=bearer(token))
        profile = await client.get("/api/v1/drivers/me", headers=bearer(token))
    for response in (score, quote):
        assert response.status_code == 503 and "risk model is unavailable" in response.json()["detail"]
        assert response.headers["retry-after"]
    assert profile.status_code == 200
