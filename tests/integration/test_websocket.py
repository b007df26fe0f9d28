"""The LiveGateway app on Serve with two replicas: fan-out from Redis to viewers on any replica, resume after
a forced disconnect without gap or duplicate, auth close codes, heartbeats, and sockets that cannot starve
the API's HTTP requests."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
import websockets
from ray import serve
from websockets.exceptions import ConnectionClosed, InvalidStatus

from config.names import API_APP, WS_APP
from deployments.api.auth import issue_token
from deployments.builder import API_ROUTE, WS_ROUTE, build_api_app, build_ws_app
from deployments.websocket import CLOSE_BAD_REQUEST, CLOSE_FORBIDDEN, CLOSE_NOT_FOUND
from deployments.ws_protocol import client_subprotocols
from domain.batches import LivePosition, ShardOutput
from storage.redis.client import create_redis
from storage.redis.projections import publish_batch
from tests.integration.serve_support import (
    admin_token,
    driver_token,
    insert_drivers,
    run_driver_ids,
    settings_with_topics,
)

pytestmark = pytest.mark.timeout(300)
WS_SLOTS = 30


@pytest.fixture(scope="module")
def live(serve_session, migrated_settings, kafka_bootstrap):
    settings = settings_with_topics(migrated_settings, kafka_bootstrap, ws_num_replicas=2, ws_heartbeat_s=1.0,
                                    ws_max_ongoing_requests=WS_SLOTS, api_num_replicas=1)
    drivers = run_driver_ids(3)
    insert_drivers(settings, drivers)
    serve.run(build_ws_app(settings), name=WS_APP, route_prefix=WS_ROUTE)
    yield settings, serve_session.replace("http://", "ws://") + WS_ROUTE, drivers
    serve.delete(WS_APP)


async def publish(settings, driver_id: str, *seqs: int) -> None:
    """Project positions exactly as the persistence actor does (recent zset + PUBLISH + fleet chunk)."""
    redis = create_redis(settings)
    try:
        for seq in seqs:
            live = LivePosition(driver_id, seq, 1_780_000_000_000 + seq, 45.0, 7.0, 50.0, 90.0, None)
            await publish_batch(redis, [ShardOutput(shard=0, live=[live])])
    finally:
        await redis.aclose()


async def connect(url: str, token: str, since: int | None = None):
    """The token as a subprotocol (deployments.ws_protocol), never in the URL."""
    return await websockets.connect(url if since is None else f"{url}?since={since}", open_timeout=10,
                                    subprotocols=client_subprotocols(token))


async def next_message(ws, timeout_s: float = 5.0, skip_heartbeats: bool = True) -> dict:
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), timeout_s))
        if not (skip_heartbeats and message["type"] == "heartbeat"):
            return message


async def non_heartbeats_within(ws, seconds: float) -> list[dict]:
    """Every message other than heartbeats received during `seconds`."""
    got = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            message = json.loads(await asyncio.wait_for(ws.recv(), left))
        except TimeoutError:
            break
        if message["type"] != "heartbeat":
            got.append(message)
    return got


async def close_code(ws) -> tuple[int, str]:
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(ws.recv(), 10)
    return closed.value.rcvd.code, closed.value.rcvd.reason


async def viewers_on_two_replicas(url: str, token: str, timeout_s: float = 30.0) -> list:
    """Open sockets until two distinct replicas said hello (HAProxy learns about a new replica a moment after
    `serve.run` returns); the extra sockets are closed."""
    by_replica: dict[str, object] = {}
    spare = []
    deadline = time.monotonic() + timeout_s
    while len(by_replica) < 2 and time.monotonic() < deadline:
        ws = await connect(url, token)
        hello = await next_message(ws)
        assert hello["type"] == "hello"
        if hello["replica"] in by_replica:
            spare.append(ws)
            await asyncio.sleep(0.2)
        else:
            by_replica[hello["replica"]] = ws
    for ws in spare:
        await ws.close()
    assert len(by_replica) == 2, "the ingress sent every socket to one replica"
    return list(by_replica.values())


async def test_viewers_on_both_replicas_receive_a_message_published_anywhere(live):
    settings, url, (driver, *_) = live
    viewers = await viewers_on_two_replicas(f"{url}/drivers/{driver}", driver_token(settings, driver))
    try:
        await publish(settings, driver, 101)
        for ws in viewers:
            message = await next_message(ws)
            assert (message["type"], message["seq"], message["driver_id"]) == ("position", 101, driver)
    finally:
        for ws in viewers:
            await ws.close()


async def test_a_viewer_resumes_after_a_forced_disconnect_with_exactly_the_missed_messages(live):
    settings, url, (_, driver, _) = live
    token = driver_token(settings, driver)
    ws = await connect(f"{url}/drivers/{driver}", token)
    assert (await next_message(ws))["type"] == "hello"
    await publish(settings, driver, 1, 2)
    assert [(await next_message(ws))["seq"] for _ in range(2)] == [1, 2]
    ws.transport.abort()  # no close frame: the network dropped
    await publish(settings, driver, 3, 4, 5)

    ws = await connect(f"{url}/drivers/{driver}", token, since=2)
    try:
        hello = await next_message(ws)
        assert hello["type"] == "hello" and hello["since"] == 2
        assert [(await next_message(ws))["seq"] for _ in range(3)] == [3, 4, 5]
        await publish(settings, driver, 6)
        assert (await next_message(ws))["seq"] == 6
        assert await non_heartbeats_within(ws, 1.5) == []  # nothing repeated after that
    finally:
        await ws.close()


async def test_resuming_while_messages_keep_coming_has_no_gap_and_no_duplicate(live):
    settings, url, (_, _, driver) = live
    token = admin_token(settings)
    await publish(settings, driver, *range(1000, 1010))
    publisher = asyncio.create_task(_publish_slowly(settings, driver, range(1010, 1060)))
    try:
        await asyncio.sleep(0.1)
        ws = await connect(f"{url}/drivers/{driver}", token, since=1004)
        assert (await next_message(ws))["type"] == "hello"
        seqs = [(await next_message(ws))["seq"] for _ in range(1059 - 1004)]
        assert seqs == list(range(1005, 1060))
        await publisher
        assert await non_heartbeats_within(ws, 1.0) == []
        await ws.close()
    finally:
        publisher.cancel()


async def _publish_slowly(settings, driver: str, seqs) -> None:
    for seq in seqs:
        await publish(settings, driver, seq)
        await asyncio.sleep(0.005)


@pytest.mark.parametrize("offered", ["none", "garbage", "token-in-the-url"])
async def test_a_socket_without_a_good_token_is_refused_before_it_is_accepted(live, offered):
    settings, url, (driver, *_) = live
    token = driver_token(settings, driver)
    target, subprotocols = {"none": (f"{url}/drivers/{driver}", None),
                            "garbage": (f"{url}/drivers/{driver}", client_subprotocols("not-a-jwt")),
                            "token-in-the-url": (f"{url}/drivers/{driver}?token={token}", None)}[offered]
    with pytest.raises(InvalidStatus) as refused:
        await websockets.connect(target, open_timeout=10, subprotocols=subprotocols)
    assert refused.value.response.status_code == 403


@pytest.mark.parametrize(
    ("who", "path", "since", "code"),
    [
        ("driver d1", "drivers/{d0}", None, CLOSE_FORBIDDEN),
        ("admin", "drivers/nobody-{d0}", None, CLOSE_NOT_FOUND),
        ("driver d0", "fleet", None, CLOSE_FORBIDDEN),
        ("driver d0", "drivers/{d0}", "yesterday", CLOSE_BAD_REQUEST),
    ],
)
async def test_refused_sockets_close_with_a_code_and_a_reason(live, who, path, since, code):
    settings, url, (d0, d1, _) = live
    tokens = {"driver d1": driver_token(settings, d1), "admin": admin_token(settings),
              "driver d0": driver_token(settings, d0)}
    ws = await connect(f"{url}/{path.format(d0=d0)}", tokens[who], since)
    got, reason = await close_code(ws)
    assert got == code and reason


async def test_the_fleet_feed_gives_admins_every_drivers_messages(live):
    settings, url, (_, d1, _) = live
    ws = await connect(f"{url}/fleet", admin_token(settings))
    try:
        assert (await next_message(ws))["type"] == "hello"
        await publish(settings, d1, 501)
        chunk = await next_message(ws)
        assert chunk["type"] == "fleet_batch"
        assert [(m["driver_id"], m["seq"]) for m in chunk["messages"]] == [(d1, 501)]
    finally:
        await ws.close()


async def test_a_crash_announces_its_claim_to_the_drivers_and_the_fleet_viewers(live):
    from domain.claims import claim_id
    from tests.contracts.claims_contract import crash_event

    settings, url, (_, _, driver) = live
    mine = await connect(f"{url}/drivers/{driver}", driver_token(settings, driver))
    fleet = await connect(f"{url}/fleet", admin_token(settings))
    try:
        assert (await next_message(mine))["type"] == "hello" and (await next_message(fleet))["type"] == "hello"
        crash = crash_event(driver, 1)  # stream version 1, caused by the reading at offset (seq) 1
        redis = create_redis(settings)
        try:  # projected exactly as the persistence actor does after the write that opened the claim
            await publish_batch(redis, [ShardOutput(shard=0, events=[crash])])
        finally:
            await redis.aclose()
        announced = await next_message(mine)
        assert (announced["type"], announced["claim_id"], announced["seq"]) == (
            "claim_opened", str(claim_id(crash.event_id)), 1)
        assert (await next_message(mine))["type"] == "crash_detected"
        chunk = await next_message(fleet)
        assert [m["type"] for m in chunk["messages"]] == ["claim_opened", "crash_detected"]
        assert chunk["messages"][0]["driver_id"] == driver
    finally:
        await mine.close()
        await fleet.close()


async def test_open_sockets_do_not_slow_the_apis_http_requests(live, serve_session):
    settings, url, (d0, *_) = live
    serve.run(build_api_app(settings), name=API_APP, route_prefix=API_ROUTE)
    sockets = []
    try:
        for n in range(WS_SLOTS):  # every slot of one LiveGateway replica's worth, held open; a login each (caps)
            token = issue_token(settings, user_id=f"slot-{n}", role="driver", driver_id=d0)
            sockets.append(await connect(f"{url}/drivers/{d0}", token))
        for ws in sockets:
            assert (await next_message(ws))["type"] == "hello"
        async with httpx.AsyncClient(base_url=serve_session, timeout=5) as client:
            durations = []
            for _ in range(40):
                started = time.perf_counter()
                response = await client.get("/health/live")
                durations.append(time.perf_counter() - started)
                assert response.status_code == 200
        durations.sort()
        assert durations[int(0.95 * len(durations))] < 0.25, durations
    finally:
        for ws in sockets:
            await ws.close()
        serve.delete(API_APP)
