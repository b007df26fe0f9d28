"""Claims (first notice of loss) on PostgreSQL: the ClaimStore contract with the PostgresEventStore that opens them,
and the REST routes in-process (driver's own, admin list and detail, one answer; bad input is 4xx)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from storage.postgres.claims import PostgresClaimStore
from storage.postgres.event_store import PostgresEventStore
from storage.postgres.partitions import PartitionCache
from storage.postgres.pool import create_pool
from tests.contracts.claims_contract import *  # noqa: F403 - the contract's tests and the `cid` fixture
from tests.integration.inprocess_api import (
    bearer,
    drop_seeded,
    insert_scores,
    login,
    open_claim,
    running_api,
    seeded_database,
)

D1, D2 = "driver0001", "driver0002"


@pytest.fixture(scope="module")
async def claims_settings(base_settings):
    settings = await seeded_database(base_settings, drivers=2)
    try:
        yield settings
    finally:
        await drop_seeded(settings)


@pytest.fixture(scope="module")
async def claims_pool(claims_settings) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(claims_settings, application_name="test-claims", min_size=1, max_size=2)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
def claims_backend(claims_pool, claims_settings):
    return PostgresEventStore(claims_pool, PartitionCache()), PostgresClaimStore(claims_pool, claims_settings)


@pytest.fixture(scope="module")
async def api(claims_settings):
    async with running_api(claims_settings) as (_, client):
        tokens = {"d1": await login(client, D1), "d2": await login(client, D2), "admin": await login(client, "admin")}
        yield client, tokens


async def test_a_driver_reads_and_answers_their_own_claim_once(api, claims_settings):
    client, tokens = api
    claim = await open_claim(claims_settings, D1)
    mine = await client.get("/api/v1/claims/me", params={"status": "open"}, headers=bearer(tokens["d1"]))
    assert mine.status_code == 200 and str(claim) in [c["claim_id"] for c in mine.json()["items"]]
    detail = (await client.get(f"/api/v1/claims/{claim}", headers=bearer(tokens["d1"]))).json()
    assert detail["status"] == "open" and len(detail["readings"]) == 60 and detail["lat"] == 52.5
    answer = await client.post(f"/api/v1/claims/{claim}/confirmation", json={"confirmed": True, "note": "yes, hit"},
                               headers=bearer(tokens["d1"]))
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "confirmed" and answer.json()["note"] == "yes, hit"
    assert answer.json()["decided_by"] is not None and answer.json()["decided_at"] is not None
    again = await client.post(f"/api/v1/claims/{claim}/confirmation", json={"confirmed": False},
                              headers=bearer(tokens["d1"]))
    assert again.status_code == 409 and "confirmed already" in again.json()["detail"]


async def test_the_admin_lists_claims_by_status_and_reads_one_but_cannot_answer(api, claims_settings):
    client, tokens = api
    claim = await open_claim(claims_settings, D2)
    admin = bearer(tokens["admin"])
    listed = (await client.get("/api/v1/admin/claims", params={"status": "open", "driver_id": D2},
                               headers=admin)).json()
    assert [c["claim_id"] for c in listed["items"]][:1] == [str(claim)] and listed["total"] >= 1
    assert all(c["status"] == "open" and "readings" not in c for c in listed["items"])
    detail = await client.get(f"/api/v1/admin/claims/{claim}", headers=admin)
    assert detail.status_code == 200 and detail.json()["driver_id"] == D2
    refused = await client.post(f"/api/v1/claims/{claim}/confirmation", json={"confirmed": True}, headers=admin)
    assert refused.status_code == 403 and "claim's driver" in refused.json()["detail"]
    other = await client.post(f"/api/v1/claims/{claim}/confirmation", json={"confirmed": True},
                              headers=bearer(tokens["d1"]))
    assert other.status_code == 404  # another driver's claim: the same answer as an unknown one
    confirmed = (await client.get("/api/v1/admin/claims", params={"status": "confirmed", "driver_id": D2},
                                  headers=admin)).json()
    assert str(claim) not in [c["claim_id"] for c in confirmed["items"]]


@pytest.mark.parametrize(("method", "path", "body", "expected"), [
    ("GET", "/api/v1/admin/claims?status=lost", None, 422),
    ("GET", "/api/v1/admin/claims/not-a-uuid", None, 422),
    ("GET", f"/api/v1/admin/claims/{uuid.UUID(int=1)}", None, 404),
    ("POST", f"/api/v1/claims/{uuid.UUID(int=1)}/confirmation", {"confirmed": True}, 404),
    ("POST", "/api/v1/claims/{claim}/confirmation", {"confirmed": "perhaps"}, 422),
    ("POST", "/api/v1/claims/{claim}/confirmation", {"note": "no answer"}, 422),
    ("POST", "/api/v1/claims/{claim}/confirmation", {"confirmed": True, "note": "x" * 2001}, 422),
])
async def test_bad_input_is_a_4xx_with_a_message(api, claims_settings, method, path, body, expected):
    client, tokens = api
    token = tokens["admin"] if "/admin/" in path else tokens["d1"]
    if "{claim}" in path:
        path = path.format(claim=await open_claim(claims_settings, D1))
    response = await client.request(method, path, json=body, headers=bearer(token))
    assert response.status_code == expected, response.text
    assert response.json()["detail"]


async def test_fairness_and_drift_read_the_scored_drivers_cohorts_and_claims(api, claims_settings):
    client, tokens = api
    admin = bearer(tokens["admin"])
    empty = (await client.get("/api/v1/admin/analytics/drift", params={"days": 1}, headers=admin)).json()
    assert empty["drivers"] == 0 and empty["score"]["psi"] is None
    await insert_scores(claims_settings, D1, [95.0])  # both drivers in the top decile: far from training's uniform
    await insert_scores(claims_settings, D2, [97.0])
    drift = (await client.get("/api/v1/admin/analytics/drift", params={"days": 1}, headers=admin)).json()
    assert drift["drivers"] == 2 and drift["score"]["drift"] and drift["score"]["psi"] > drift["threshold"] == 0.2
    assert drift["score"]["bins"][-1] == {"lower": 90.0, "expected": 0.1, "actual": 1.0}
    # 'test-model' has no artifact: the inputs' drift is unknown, and the route says why instead of failing
    assert drift["inputs"] == [] and drift["model_version"] == "test-model" and "reference" in drift["note"]
    cohorts = (await client.get("/api/v1/admin/analytics/cohorts", params={"days": 1}, headers=admin)).json()
    dims = {(c["dimension"], c["cohort"]) for c in cohorts["items"]}
    assert {d for d, _ in dims} == {"age_band", "region", "vehicle_use"} and cohorts["ratio_band"] == [0.8, 1.25]
    assert sum(c["drivers"] for c in cohorts["items"] if c["dimension"] == "region") == 2
    calibration = (await client.get("/api/v1/admin/analytics/calibration", params={"days": 1}, headers=admin)).json()
    assert calibration["drivers"] == 2 and len(calibration["items"]) == 2
    assert sum(d["observed_claims"] for d in calibration["items"]) >= 1  # D2's claim, open (not rejected)
    bad = await client.get("/api/v1/admin/analytics/drift", params={"days": 0}, headers=admin)
    assert bad.status_code == 422


async def test_a_claim_on_a_withheld_trip_shows_no_position_to_anyone_and_says_so(api, claims_settings):
    """docs/PRIVACY.md: a trip whose positions the driver's mode withholds (here mileage_only, which withholds every
    trip) keeps them out of its claim too, admins included; time, speed and forces stay."""
    client, tokens = api
    privacy = "/api/v1/drivers/me/privacy"
    assert (await client.put(privacy, json={"mode": "mileage_only"}, headers=bearer(tokens["d2"]))).status_code == 200
    try:
        claim = await open_claim(claims_settings, D2)
        for who in ("d2", "admin"):
            shown = (await client.get(f"/api/v1/claims/{claim}", headers=bearer(tokens[who]))).json()
            assert shown["positions_withheld"] is True and shown["lat"] is None and shown["lon"] is None, shown
            assert shown["readings"] and all(r["lat"] is None and r["lon"] is None for r in shown["readings"])
            assert all(r["speed_kmh"] is not None for r in shown["readings"]) and shown["peak_g"] > 0
        listed = (await client.get("/api/v1/admin/claims", params={"driver_id": D2},
                                   headers=bearer(tokens["admin"]))).json()["items"]
        assert listed and all(item["positions_withheld"] and item["lat"] is None for item in listed)
        answered = await client.post(f"/api/v1/claims/{claim}/confirmation", json={"confirmed": True},
                                     headers=bearer(tokens["d2"]))
        assert answered.status_code == 200 and answered.json()["lat"] is None, answered.text
        other = await open_claim(claims_settings, D1)  # a driver in full mode: the claim shows where
        shown = (await client.get(f"/api/v1/claims/{other}", headers=bearer(tokens["admin"]))).json()
        assert shown["positions_withheld"] is False and shown["lat"] is not None
    finally:
        await client.put(privacy, json={"mode": "full"}, headers=bearer(tokens["d2"]))
