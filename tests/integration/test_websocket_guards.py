"""The live feeds' guards with real sockets (uvicorn in this process, real PostgreSQL and Redis): authentication
before accept (subprotocol, never the URL), the close at token expiry and on revocation (driver feed and fleet),
per-user and per-address socket caps, the size limit on client messages, and the send timeout that drops a slow
reader (docs/SECURITY.md §8–9)."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import pytest
import uvicorn
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from autoins.stack import free_tcp_port
from deployments.api.auth import issue_token, sign_claims
from deployments.websocket import (
    CLOSE_TOO_BIG,
    CLOSE_TOO_MANY_SOCKETS,
    CLOSE_UNAUTHORIZED,
    create_ws_app,
)
from deployments.ws_protocol import PROTOCOL, client_subprotocols
from storage.postgres.pool import connect as pg_connect
from storage.redis.client import create_redis
from storage.redis.invalidation import RedisSessionNotifier
from storage.redis.keys import driver_channel
from tests.integration.serve_support import insert_drivers, run_driver_ids

pytestmark = pytest.mark.timeout(180)
PER_USER, PER_ADDRESS, SEND_TIMEOUT_S, MAX_MESSAGE, TTL_S = 3, 6, 0.5, 1024, 1.5


@pytest.fixture(scope="module")
async def feeds(migrated_settings):
    settings = migrated_settings.with_overrides(
        ws_max_sockets_per_user=PER_USER, ws_max_sockets_per_address=PER_ADDRESS, ws_send_timeout_s=SEND_TIMEOUT_S,
        ws_max_client_message_bytes=MAX_MESSAGE, session_check_ttl_s=TTL_S, ws_heartbeat_s=0.5)
    drivers = run_driver_ids(2)
    await asyncio.to_thread(insert_drivers, settings, drivers)
    port = free_tcp_port()
    server = uvicorn.Server(uvicorn.Config(create_ws_app(settings), host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="on"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "uvicorn did not start"
        await asyncio.sleep(0.05)
    try:
        yield settings, f"ws://127.0.0.1:{port}", drivers
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)


def _token(settings, user_id: str, driver_id: str | None, *, ttl_s: float | None = None, version: int = 0) -> str:
    if ttl_s is None:
        role = "driver" if driver_id else "admin"
        return issue_token(settings, user_id=user_id, role=role, driver_id=driver_id, token_version=version)
    now = int(time.time())
    return sign_claims(settings, {"sub": user_id, "role": "driver" if driver_id else "admin", "driver_id": driver_id,
                                  "ver": version, "iat": now, "exp": now + ttl_s})


async def _open(url: str, token: str | None, **options):
    ws = await websockets.connect(url, open_timeout=10, subprotocols=client_subprotocols(token) if token else None,
                                  **options)
    hello = json.loads(await asyncio.wait_for(ws.recv(), 5))
    assert hello["type"] == "hello", hello
    return ws


async def _closed_with(ws, within_s: float) -> tuple[int, str, float]:
    started = time.monotonic()
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(ws.recv(), within_s)
    return closed.value.rcvd.code, closed.value.rcvd.reason, time.monotonic() - started


async def _refused_at_handshake(url: str, subprotocols=None) -> int:
    with pytest.raises(InvalidStatus) as refused:
        await websockets.connect(url, open_timeout=10, subprotocols=subprotocols)
    return refused.value.response.status_code


async def _revoke(settings, user_id: str, *, announce: bool) -> None:
    """Bump the user's version as the API's Sessions does; `announce=False`: the message is lost."""
    redis = create_redis(settings)
    pool_conn = await pg_connect(settings)
    try:
        await pool_conn.execute(
            "INSERT INTO token_versions (user_id, version) VALUES ($1, 1) ON CONFLICT (user_id) DO UPDATE"
            " SET version = token_versions.version + 1", user_id)
        if announce:
            await RedisSessionNotifier(redis).announce_users_changed([user_id])
    finally:
        await pool_conn.close()
        await redis.aclose()


def _user(tag: str) -> str:
    return f"guard-{tag}-{time.monotonic_ns()}"


async def test_a_socket_is_accepted_only_with_a_valid_token_offered_as_a_subprotocol(feeds):
    settings, url, (d0, _) = feeds
    feed = f"{url}/drivers/{d0}"
    token = _token(settings, _user("ok"), d0)
    assert await _refused_at_handshake(feed) == 403  # no token at all
    assert await _refused_at_handshake(f"{feed}?token={token}") == 403  # the old way: a token in the URL
    assert await _refused_at_handshake(feed, [PROTOCOL, "bearer.not-a-jwt"]) == 403
    assert await _refused_at_handshake(feed, [f"bearer.{token}"]) == 403  # without the protocol
    expired = _token(settings, _user("old"), d0, ttl_s=-60)
    assert await _refused_at_handshake(feed, client_subprotocols(expired)) == 403
    revoked_user = _user("revoked")
    await _revoke(settings, revoked_user, announce=True)
    assert await _refused_at_handshake(feed, client_subprotocols(_token(settings, revoked_user, d0))) == 403
    ws = await _open(feed, token)
    try:
        assert ws.subprotocol == PROTOCOL  # the token is never echoed
    finally:
        await ws.close()


@pytest.mark.parametrize("kind", ["driver", "fleet"])
async def test_a_socket_closes_when_its_token_expires(feeds, kind):
    settings, url, (d0, _) = feeds
    path, driver = (f"/drivers/{d0}", d0) if kind == "driver" else ("/fleet", None)
    ws = await _open(f"{url}{path}", _token(settings, _user("exp"), driver, ttl_s=2))
    code, reason, took_s = await _closed_with(ws, 10)
    assert code == CLOSE_UNAUTHORIZED and "expired" in reason
    assert took_s < 4, took_s


@pytest.mark.parametrize("kind", ["driver", "fleet"])
@pytest.mark.parametrize("announce", [True, False], ids=["message", "message-lost"])
async def test_a_socket_closes_when_its_users_tokens_are_revoked(feeds, kind, announce):
    settings, url, (d0, _) = feeds
    user = _user("rev")
    path, driver = (f"/drivers/{d0}", d0) if kind == "driver" else ("/fleet", None)
    ws = await _open(f"{url}{path}", _token(settings, user, driver))
    await asyncio.sleep(0.2)
    await _revoke(settings, user, announce=announce)
    code, reason, took_s = await _closed_with(ws, 10)
    assert code == CLOSE_UNAUTHORIZED and "revoked" in reason
    assert took_s < (1.0 if announce else TTL_S + 1.0), took_s


async def test_sockets_per_user_are_capped_and_a_closed_one_frees_its_place(feeds):
    settings, url, (d0, _) = feeds
    token = _token(settings, _user("cap"), d0)
    sockets = [await _open(f"{url}/drivers/{d0}", token) for _ in range(PER_USER)]
    try:
        extra = await websockets.connect(f"{url}/drivers/{d0}", subprotocols=client_subprotocols(token))
        code, reason, _ = await _closed_with(extra, 5)
        assert code == CLOSE_TOO_MANY_SOCKETS and "user" in reason
        await sockets.pop().close()
        await asyncio.sleep(0.2)
        sockets.append(await _open(f"{url}/drivers/{d0}", token))
    finally:
        for ws in sockets:
            await ws.close()


async def test_sockets_per_address_are_capped(feeds):
    settings, url, (d0, d1) = feeds
    sockets = [await _open(f"{url}/drivers/{d0}", _token(settings, _user(f"addr{n}"), d0)) for n in range(PER_ADDRESS)]
    try:
        extra = await websockets.connect(f"{url}/drivers/{d1}",
                                         subprotocols=client_subprotocols(_token(settings, _user("addr-x"), d1)))
        code, reason, _ = await _closed_with(extra, 5)
        assert code == CLOSE_TOO_MANY_SOCKETS and "address" in reason
    finally:
        for ws in sockets:
            await ws.close()


async def test_a_client_message_over_the_limit_closes_the_socket(feeds):
    settings, url, (d0, _) = feeds
    ws = await _open(f"{url}/drivers/{d0}", _token(settings, _user("big"), d0))
    await ws.send("x" * (MAX_MESSAGE // 2))  # small ones are read and ignored
    await ws.send("x" * (MAX_MESSAGE + 1))
    code, reason, _ = await _closed_with(ws, 5)
    assert code == CLOSE_TOO_BIG and str(MAX_MESSAGE) in reason


async def _silent_reader(port: int, path: str, token: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A WebSocket client that completes the handshake and then reads nothing (a tiny receive buffer)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock, limit=4096)
    writer.write((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                  f"Sec-WebSocket-Protocol: {', '.join(client_subprotocols(token))}\r\n\r\n").encode())
    await writer.drain()
    status = await asyncio.wait_for(reader.readline(), 5)
    assert b" 101 " in status, status
    return reader, writer


async def test_a_reader_that_stops_reading_is_dropped_not_buffered_for(feeds):
    settings, url, (_, d1) = feeds
    port = int(url.rsplit(":", 1)[1])
    reader, writer = await _silent_reader(port, f"/drivers/{d1}", _token(settings, _user("slow"), d1))
    pad, count = "x" * 200_000, 100  # 20 MB: more than every buffer between; distinct seqs (repeats are dropped)
    redis = create_redis(settings)
    try:
        for seq in range(count):
            await redis.publish(driver_channel(d1), json.dumps({"type": "filler", "seq": seq, "pad": pad}))
    finally:
        await redis.aclose()
    await asyncio.sleep(SEND_TIMEOUT_S + 2)  # the server's send blocks on full buffers, then gives up
    received, deadline = 0, time.monotonic() + 20
    try:
        while time.monotonic() < deadline:  # what the buffers held, then the end of the connection
            chunk = await asyncio.wait_for(reader.read(1 << 20), 5)
            if not chunk:
                break
            received += len(chunk)
        else:
            raise AssertionError(f"the connection was still open after {received} bytes")
    finally:
        writer.close()
    assert received < count * len(pad) // 2, f"{received} bytes were buffered for a client that did not read"
