"""Privacy consent end to end (in-process API and live-feed app, real PostgreSQL and Redis): what every route that
can show a position answers per mode, who may read or change a consent, the events in the log, erasure, and an
open WebSocket that stops receiving positions the moment the mode changes (docs/PRIVACY.md)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest
import uvicorn
import websockets

from autoins.stack import free_tcp_port
from deployments.websocket import create_ws_app
from deployments.ws_protocol import client_subprotocols
from domain.events import decode_event
from domain.privacy import privacy_stream_id, replay
from storage.postgres.pool import connect
from storage.redis.client import create_redis
from storage.redis.keys import driver_channel
from tests.integration.inprocess_api import (
    bearer,
    drop_seeded,
    insert_trip_story,
    insert_trips,
    login,
    open_claim,
    running_api,
    seeded_database,
)

PRIVATE, MILEAGE, ERASED, LIVE = "driver0001", "driver0002", "driver0003", "driver0004"
DRIVERS = (PRIVATE, MILEAGE, ERASED, LIVE)


@pytest.fixture(scope="module")
async def world(base_settings):
    settings = await seeded_database(base_settings, drivers=4)
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    trips = {}
    for driver in DRIVERS:
        trips[driver] = await insert_trips(settings, driver, 2, end)  # [newer, older]
        for i, trip in enumerate(trips[driver]):  # insert_trips: the i-th ends 2 i hours before `end`, lasts 1 h
            trip_end = end - timedelta(hours=2 * i)
            await insert_trip_story(settings, driver, trip, trip_end - timedelta(hours=1), trip_end, 2, 20)
    try:
        async with running_api(settings) as (_app, client):
            tokens = {name: await login(client, name) for name in (*DRIVERS, "admin")}
            yield client, settings, trips, tokens
    finally:
        await drop_seeded(settings)


async def _call(world, who: str, method: str, path: str, **kwargs):
    client, _settings, _trips, tokens = world
    return await client.request(method, path, headers=bearer(tokens[who]), **kwargs)


async def _set_mode(world, driver: str, mode: str) -> dict:
    response = await _call(world, driver, "PUT", "/api/v1/drivers/me/privacy", json={"mode": mode})
    assert response.status_code == 200, response.text
    return response.json()


def _positions(path_kind: str, body: dict) -> bool:
    """Whether an answer shows any position."""
    if path_kind == "route":
        return body["geometry"] is not None
    if path_kind == "events":
        return any(item["lat"] is not None for item in body["items"])
    return False


async def _shows(world, who: str, trip) -> dict[str, object]:
    """What each position-bearing route says about one trip, as `who`."""
    answers = {}
    for kind, path in (("route", f"/api/v1/trips/{trip}/route"), ("events", f"/api/v1/trips/{trip}/events")):
        response = await _call(world, who, "GET", path)
        assert response.status_code == 200, response.text
        answers[kind] = _positions(kind, response.json())
    trip_body = (await _call(world, who, "GET", f"/api/v1/trips/{trip}")).json()
    answers["trip"] = (trip_body["private"], trip_body["positions_withheld"])
    return answers


async def test_every_position_route_withholds_what_the_mode_says_for_driver_and_admin_alike(world):
    _client, _settings, trips, _tokens = world
    private_trip, other_trip = trips[PRIVATE]
    for who in (PRIVATE, "admin"):  # full: everything shown
        assert await _shows(world, who, private_trip) == {"route": True, "events": True, "trip": (False, False)}
    await _set_mode(world, PRIVATE, "private_trips")
    marked = await _call(world, PRIVATE, "POST", f"/api/v1/trips/{private_trip}/private")
    assert marked.status_code == 200, marked.text
    assert marked.json()["private_trips"] == [str(private_trip)]
    await _set_mode(world, MILEAGE, "mileage_only")
    table = [  # (driver, trip, expected answers): the private trip and every mileage_only trip are withheld
        (PRIVATE, private_trip, {"route": False, "events": False, "trip": (True, True)}),
        (PRIVATE, other_trip, {"route": True, "events": True, "trip": (False, False)}),
        (MILEAGE, trips[MILEAGE][0], {"route": False, "events": False, "trip": (False, True)}),
        (MILEAGE, trips[MILEAGE][1], {"route": False, "events": False, "trip": (False, True)}),
    ]
    for driver, trip, expected in table:
        for who in (driver, "admin"):
            assert await _shows(world, who, trip) == expected, (driver, who, trip)
    page = (await _call(world, "admin", "GET", f"/api/v1/drivers/{PRIVATE}/trips")).json()
    assert {item["trip_id"]: item["positions_withheld"] for item in page["items"]} == {
        str(private_trip): True, str(other_trip): False}


async def test_a_consent_is_the_drivers_own_and_others_see_404s(world):
    _client, _settings, trips, _tokens = world
    cases = [
        ("admin", "PUT", f"/api/v1/drivers/{LIVE}/privacy", {"mode": "mileage_only"}, 403),
        (PRIVATE, "PUT", f"/api/v1/drivers/{LIVE}/privacy", {"mode": "mileage_only"}, 404),
        (PRIVATE, "GET", f"/api/v1/drivers/{LIVE}/privacy", None, 404),
        ("admin", "GET", f"/api/v1/drivers/{LIVE}/privacy", None, 200),
        (LIVE, "GET", "/api/v1/drivers/me/privacy", None, 200),
        ("admin", "GET", "/api/v1/drivers/me/privacy", None, 404),
        (LIVE, "PUT", "/api/v1/drivers/me/privacy", {"mode": "nowhere"}, 422),
        (LIVE, "POST", f"/api/v1/trips/{trips[LIVE][0]}/private", None, 409),  # full mode: nothing to mark
        (PRIVATE, "POST", f"/api/v1/trips/{trips[LIVE][0]}/private", None, 404),  # another driver's trip
        ("admin", "POST", f"/api/v1/trips/{trips[LIVE][0]}/private", None, 403),
        (LIVE, "POST", f"/api/v1/admin/drivers/{LIVE}/erasure", {"reason": "mine"}, 403),
        ("admin", "POST", "/api/v1/admin/drivers/nobody/erasure", {"reason": "x"}, 404),
        ("admin", "POST", f"/api/v1/admin/drivers/{LIVE}/erasure", {}, 422),
    ]
    for who, method, path, body, status in cases:
        response = await _call(world, who, method, path, **({"json": body} if body is not None else {}))
        assert response.status_code == status, (who, method, path, response.text)
    assert (await _call(world, "admin", "GET", f"/api/v1/drivers/{LIVE}/privacy")).json()["mode"] == "full"


async def test_consent_changes_are_events_with_who_and_when_that_replay_to_the_read_model(world):
    _client, settings, _trips, _tokens = world
    await _set_mode(world, LIVE, "private_trips")
    state = await _set_mode(world, LIVE, "private_trips")  # the same mode again: no new event
    conn = await connect(settings)
    try:
        rows = await conn.fetch("SELECT payload::text FROM domain_events WHERE stream_id = $1 ORDER BY stream_version",
                                privacy_stream_id(LIVE))
        user_id = await conn.fetchval("SELECT user_id::text FROM users WHERE driver_id = $1", LIVE)
    finally:
        await conn.close()
    events = [decode_event(r["payload"]) for r in rows]
    assert [(e.mode, e.changed_by, e.changed_by_role) for e in events] == [("private_trips", user_id, "driver")]
    assert abs(events[0].occurred_at_ms / 1000 - datetime.now(UTC).timestamp()) < 60
    replayed = replay(LIVE, events)
    assert (replayed.mode, replayed.version) == (state["mode"], state["version"]) == ("private_trips", 1)
    await _set_mode(world, LIVE, "full")


async def test_erasure_pseudonymises_the_profile_deletes_positions_keeps_the_audit_and_is_idempotent(world):
    _client, settings, trips, _tokens = world
    claim = await open_claim(settings, ERASED)  # a first notice of loss with where it happened
    first = await _call(world, "admin", "POST", f"/api/v1/admin/drivers/{ERASED}/erasure", json={"reason": "art. 17"})
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["erased"] and not body["already_erased"] and body["readings_deleted"] == 40
    assert body["events_scrubbed"] > 0
    again = (await _call(world, "admin", "POST", f"/api/v1/admin/drivers/{ERASED}/erasure",
                         json={"reason": "art. 17"})).json()
    assert again["already_erased"] and again["version"] == body["version"]
    profile = (await _call(world, "admin", "GET", f"/api/v1/admin/drivers/{ERASED}")).json()
    assert profile["first_name"] == "erased" and profile["email"].endswith("@erased.invalid")
    assert profile["phone"] is None and profile["date_of_birth"] is None
    assert await _shows(world, "admin", trips[ERASED][0]) == {"route": False, "events": False, "trip": (False, True)}
    conn = await connect(settings)
    try:
        kept = await conn.fetchval("SELECT count(*) FROM trips WHERE driver_id = $1", ERASED)
        tags = await conn.fetch("SELECT event_type FROM domain_events WHERE stream_id = $1", privacy_stream_id(ERASED))
        positioned = await conn.fetch("SELECT payload FROM domain_events WHERE stream_id = $1 AND payload ? 'lat'",
                                      ERASED)
        claim_row = await conn.fetchrow("SELECT lat, lon, peak_g, readings FROM claims WHERE claim_id = $1", claim)
    finally:
        await conn.close()
    assert kept == 2 and [r["event_type"] for r in tags] == ["driver_erased"]
    payloads = [r["payload"] if isinstance(r["payload"], dict) else json.loads(r["payload"]) for r in positioned]
    assert len(payloads) == body["events_scrubbed"]
    assert all((p["lat"], p["lon"], p["positions_withheld"]) == (0.0, 0.0, True) for p in payloads)
    readings = claim_row["readings"] if isinstance(claim_row["readings"], list) else json.loads(claim_row["readings"])
    assert (claim_row["lat"], claim_row["lon"]) == (None, None) and claim_row["peak_g"] > 0  # the loss stays
    assert readings and all(r["lat"] is None and r["lon"] is None and r["speed_kmh"] is not None for r in readings)


@pytest.fixture
async def feed(world):
    _client, settings, _trips, _tokens = world
    port = free_tcp_port()
    server = uvicorn.Server(uvicorn.Config(create_ws_app(settings), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "uvicorn did not start"
        await asyncio.sleep(0.05)
    try:
        yield f"ws://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)


async def test_an_open_feed_stops_receiving_positions_the_moment_the_mode_changes(world, feed):
    _client, settings, _trips, tokens = world
    redis = create_redis(settings)
    ws = await websockets.connect(f"{feed}/drivers/{LIVE}", subprotocols=client_subprotocols(tokens["admin"]))
    try:
        assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "hello"

        async def position(seq: int) -> dict:
            message = {"type": "position", "driver_id": LIVE, "seq": seq, "ts_ms": 1, "lat": 45.1, "lon": 7.2,
                       "speed_kmh": 50.0, "heading": 90.0, "trip_id": None}
            await redis.publish(driver_channel(LIVE), json.dumps(message))
            while True:
                got = json.loads(await asyncio.wait_for(ws.recv(), 5))
                if got["type"] == "position":
                    return got

        assert (await position(1))["lat"] == 45.1
        await _set_mode(world, LIVE, "mileage_only")
        withheld = await position(2)  # published right after the PUT answered
        assert (withheld["lat"], withheld["lon"], withheld["positions_withheld"]) == (None, None, True)
        await _set_mode(world, LIVE, "full")
        assert (await position(3))["lat"] == 45.1
    finally:
        await ws.close()
        await redis.aclose()
