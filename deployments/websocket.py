"""The `LiveGateway` app (route prefix `/ws`): live driver and fleet feeds over WebSockets (DESIGN.md §5).

Protocol (docs/OPERATIONS.md):
- Authentication before accept (docs/SECURITY.md §9): the client offers the subprotocols `autoins.v1` and
  `bearer.<jwt>` (`deployments.ws_protocol`); a missing, invalid, expired or revoked token is refused during
  the handshake (HTTP 403, nothing accepted). No token in the URL.
- `WS /ws/drivers/{driver_id}[?since=<seq>|<seq>:<type>:<stream_version>]`: the driver themself or an admin
  (the full cursor of the last message received also replays later messages that share its seq, such as the
  trip's `risk_scored` after its `trip_ended`).
- `WS /ws/fleet`: admins; every projected message, in `fleet_batch` chunks.
- The server sends `{"type": "hello", "replica": …}` first, then (with `since`) every held message after
  it in message order, then live messages, without gap or duplicate (subscribe → confirmed →
  read recent → skip live messages already replayed); `{"type": "heartbeat", "ts_ms": …}` when idle for
  `ws_heartbeat_s`.
- Close codes: 4400 bad `since`, 4401 token expired or revoked (at its `exp`, and within the revocation bound of
  docs/SECURITY.md §8), 4403 not allowed, 4404 unknown driver, 4408 slow reader (a send waited
  `ws_send_timeout_s`), 4409 too many sockets for this user or address (`ws_max_sockets_per_*`), 4429 slow
  consumer (queue full), 1009 a client message over `ws_max_client_message_bytes`, 1012 live feed interrupted or
  server restarting (reconnect with since).
Sockets live in their own deployment: each holds a `max_ongoing_requests` slot (RAY_NOTES), so they can
never starve the API's HTTP requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import AsyncIterator

import msgspec
from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketState

from config.logging import configure_logging, get_logger
from config.settings import Settings
from deployments.api.client_address import client_address
from deployments.live_hub import LiveHub, Viewer
from deployments.metrics import platform_metrics
from deployments.replica import replica_name
from deployments.ws_protocol import PROTOCOL
from deployments.ws_session import SocketSession, authenticate, open_sessions
from domain.privacy import PrivacyState, redact_live
from domain.socket_caps import SocketCaps
from storage.metrics.db_metrics import sample_pool_forever
from storage.postgres.pool import acquire, create_pool
from storage.postgres.privacy import PostgresPrivacyStore
from storage.postgres.read_models import get_driver
from storage.redis.client import create_redis
from storage.redis.keys import FLEET_CHANNEL, driver_channel
from storage.redis.projections import message_order, read_recent

VIEWER_QUEUE = 1_000  # messages waiting for one socket before it is dropped as a slow consumer
SEEN_KEYS = 4_096  # per socket: recent message keys remembered to drop repeats (replays re-publish)
WS_POOL, WS_POOL_MAX = "autoins-ws", 2  # the replica's pool: its application name (`pool` tag) and size
CLOSE_BAD_REQUEST, CLOSE_UNAUTHORIZED, CLOSE_FORBIDDEN, CLOSE_NOT_FOUND = 4400, 4401, 4403, 4404
CLOSE_SLOW_READER, CLOSE_TOO_MANY_SOCKETS, CLOSE_SLOW_CONSUMER = 4408, 4409, 4429
CLOSE_TOO_BIG, CLOSE_RECONNECT = 1009, 1012
CLOSE_WAIT_S = 1.0  # a close frame to a client that does not read is given up after this
_log = get_logger("autoins.websocket")
_open_sockets: dict[str, int] = {}  # per kind, this replica (the websocket_connections gauge)


class _Key(msgspec.Struct):
    seq: int = -1
    type: str = ""
    stream_version: int = 0


_DECODE_KEY = msgspec.json.Decoder(_Key).decode
_ENCODE = msgspec.json.Encoder().encode


class Closed(Exception):
    """Close the socket with `code` and `reason` (≤ 123 bytes, the WebSocket limit)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason[:123]


def message_key(message: bytes) -> tuple[int, int, int, str] | None:
    """Identity and order of a driver message: its `message_order` plus its type (two events may share a
    seq); None for a payload that is not a driver message."""
    try:
        key = _DECODE_KEY(message)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    return (*message_order(key.seq, key.type, key.stream_version), key.type)


class SeenKeys:
    """The last `limit` message keys sent on one socket (drop repeats of a re-published batch)."""

    def __init__(self, limit: int = SEEN_KEYS) -> None:
        self.limit = limit
        self._keys: OrderedDict[tuple, None] = OrderedDict()

    def first_time(self, key: tuple | None) -> bool:
        if key is None:
            return True
        if key in self._keys:
            return False
        self._keys[key] = None
        if len(self._keys) > self.limit:
            self._keys.popitem(last=False)
        return True


class Since(msgspec.Struct, frozen=True):
    """Where a resuming viewer left off: `seq` alone replays every held message with a greater seq; the full
    cursor `seq:type:stream_version` of the last message received also replays the later messages that
    share its seq (a trip's `risk_scored` arrives after its `trip_ended`, with the same seq)."""

    seq: int
    after: tuple | None = None  # message_key of the last message received

    def wants(self, key: tuple | None) -> bool:
        if key is None:
            return False
        return key > self.after if self.after is not None else key[0] > self.seq


def parse_since(raw: str | None) -> Since | None:
    if raw is None or raw == "":
        return None
    parts = raw.split(":")
    try:
        seq = int(parts[0])
        after = None
        if len(parts) == 3:
            after = (*message_order(seq, parts[1], int(parts[2])), parts[1])
        elif len(parts) != 1:
            raise ValueError(raw)
    except ValueError:
        raise Closed(CLOSE_BAD_REQUEST, "since must be the last seq you received, or seq:type:stream_version "
                                        "of the last message") from None
    if seq < -1:
        raise Closed(CLOSE_BAD_REQUEST, "since must be ≥ -1")
    return Since(seq, after)


def withhold(message: bytes, privacy: dict[str, PrivacyState]) -> bytes:
    """The message as the feeds may send it under each driver's consent (domain.privacy.redact_live); the same
    bytes when no driver withholds anything (the common case costs a dict lookup, no decoding)."""
    if not privacy:
        return message
    decoded = msgspec.json.decode(message)
    if not isinstance(decoded, dict):
        return message
    if decoded.get("type") == "fleet_batch":
        items = decoded.get("messages") or []
        redacted = [redact_live(m, privacy.get(m.get("driver_id"))) if isinstance(m, dict) else m for m in items]
        changed = any(a is not b for a, b in zip(items, redacted, strict=True))
        return _ENCODE({**decoded, "messages": redacted}) if changed else message
    redacted = redact_live(decoded, privacy.get(decoded.get("driver_id")))
    return message if redacted is decoded else _ENCODE(redacted)


def replay(held: list[bytes], since: Since) -> list[bytes]:
    """The held messages a viewer resuming at `since` has not seen, in message order."""
    return [m for m in held if since.wants(message_key(m))]


def create_ws_app(settings: Settings) -> FastAPI:
    """The FastAPI app behind `LiveGateway`; one Redis pub/sub connection and a 1–2 connection pool per replica."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.log_level, json=settings.log_json)
        platform_metrics()
        app.state.redis = create_redis(settings)
        app.state.pool = await create_pool(settings, application_name=WS_POOL, min_size=1, max_size=WS_POOL_MAX)
        app.state.hub = LiveHub(app.state.redis, PostgresPrivacyStore(app.state.pool, settings).withheld)
        sampler = asyncio.create_task(sample_pool_forever(WS_POOL, app.state.pool, WS_POOL_MAX))
        app.state.caps = SocketCaps(settings.ws_max_sockets_per_user, settings.ws_max_sockets_per_address)
        async with open_sessions(settings, app.state.pool, app.state.redis) as sessions:
            app.state.sessions = sessions
            try:
                yield
            finally:
                sampler.cancel()
                await app.state.hub.close()
                await app.state.pool.close()
                await app.state.redis.aclose()

    app = FastAPI(title="autoins live feeds", lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)

    @app.websocket("/drivers/{driver_id}")
    async def driver_feed(websocket: WebSocket, driver_id: str) -> None:
        await _serve(websocket, settings, kind="driver", driver_id=driver_id)

    @app.websocket("/fleet")
    async def fleet_feed(websocket: WebSocket) -> None:
        await _serve(websocket, settings, kind="fleet", driver_id=None)

    return app


async def _serve(websocket: WebSocket, settings: Settings, *, kind: str, driver_id: str | None) -> None:
    app = websocket.app
    session = await authenticate(websocket, settings, app.state.sessions)
    if session is None:  # refused during the handshake: nothing accepted, nothing counted
        await websocket.close(code=1008)
        return
    address = client_address(websocket.scope, settings.trusted_proxy_hops)
    over_cap = app.state.caps.admit(session.principal.user_id, address)
    metrics = platform_metrics()
    if over_cap is not None:
        await websocket.accept(subprotocol=PROTOCOL)
        metrics.ws_dropped.inc(1, tags={"reason": "socket_cap"})
        await _close(websocket, CLOSE_TOO_MANY_SOCKETS, over_cap)
        return
    try:
        await websocket.accept(subprotocol=PROTOCOL)
    except BaseException:  # the client left during the handshake: its place is free again
        app.state.caps.release(session.principal.user_id, address)
        raise
    _open_sockets[kind] = _open_sockets.get(kind, 0) + 1
    metrics.ws_connections.set(_open_sockets[kind], tags={"kind": kind})
    try:
        principal = session.principal
        since = parse_since(websocket.query_params.get("since")) if kind == "driver" else None
        if kind == "fleet" and not principal.is_admin:
            raise Closed(CLOSE_FORBIDDEN, "the fleet feed is for admins")
        if kind == "driver":
            if not principal.may_read(driver_id):
                raise Closed(CLOSE_FORBIDDEN, f"you may watch only your own feed ({principal.driver_id})")
            async with acquire(app.state.pool, settings) as conn:
                if await get_driver(conn, driver_id) is None:
                    raise Closed(CLOSE_NOT_FOUND, f"driver {driver_id} does not exist")
        channel = driver_channel(driver_id) if kind == "driver" else FLEET_CHANNEL
        await _stream(websocket, settings, session, app.state.redis, channel, driver_id, since)
    except Closed as closed:
        _log.info("websocket_closed", kind=kind, driver_id=driver_id, code=closed.code, reason=closed.reason)
        if closed.code in _DROP_REASONS:
            metrics.ws_dropped.inc(1, tags={"reason": _DROP_REASONS[closed.code]})
        await _close(websocket, closed.code, closed.reason)
    except WebSocketDisconnect:
        pass
    finally:
        app.state.caps.release(session.principal.user_id, address)
        _open_sockets[kind] -= 1
        metrics.ws_connections.set(_open_sockets[kind], tags={"kind": kind})


_DROP_REASONS = {CLOSE_SLOW_CONSUMER: "slow_consumer", CLOSE_SLOW_READER: "slow_reader", CLOSE_TOO_BIG: "too_big",
                 CLOSE_UNAUTHORIZED: "token_ended"}


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    if websocket.application_state == WebSocketState.CONNECTED:
        with contextlib.suppress(Exception):  # the client may be gone already, or not reading (TimeoutError)
            await asyncio.wait_for(websocket.close(code=code, reason=reason), CLOSE_WAIT_S)


async def _stream(websocket: WebSocket, settings: Settings, session: SocketSession, redis, channel: str,
                  driver_id: str | None, since: Since | None) -> None:
    hub: LiveHub = websocket.app.state.hub
    viewer = Viewer(VIEWER_QUEUE)
    await hub.subscribe(channel, viewer)  # before reading recent: nothing published after this is missed
    receiver = asyncio.create_task(_drain_client(websocket, settings.ws_max_client_message_bytes), name="ws-receive")
    send = _Sender(websocket, settings.ws_send_timeout_s)
    try:
        with session.watching(viewer):
            await send({
                "type": "hello", "replica": replica_name(), "channel": channel, "driver_id": driver_id,
                "since": None if since is None else since.seq, "heartbeat_s": settings.ws_heartbeat_s,
                "ts_ms": int(time.time() * 1000), "expires_at_ms": int(session.expires_at_s * 1000),
            })
            seen = SeenKeys(max(SEEN_KEYS, 2 * settings.ws_recent_messages))
            if since is not None and driver_id is not None:
                held = await read_recent(redis, driver_id, since.seq - 1 if since.after is not None else since.seq)
                for message in replay(held, since):
                    if seen.first_time(message_key(message)):
                        await send(withhold(message, hub.privacy))
            await _forward(send, viewer, session, seen if driver_id is not None else None, settings.ws_heartbeat_s,
                           receiver, hub)
    finally:
        receiver.cancel()
        await hub.unsubscribe(channel, viewer)


class _Sender:
    """Every send bounded by `timeout_s`: a client that does not read is dropped (4408), never buffered for."""

    def __init__(self, websocket: WebSocket, timeout_s: float) -> None:
        self.websocket, self.timeout_s = websocket, timeout_s

    async def __call__(self, message: bytes | dict) -> None:
        text = (message if isinstance(message, bytes) else _ENCODE(message)).decode()
        try:
            await asyncio.wait_for(self.websocket.send_text(text), self.timeout_s)
        except TimeoutError:
            raise Closed(CLOSE_SLOW_READER, f"slow reader: a message waited {self.timeout_s:g} s to be sent") from None


async def _forward(send: _Sender, viewer: Viewer, session: SocketSession, seen: SeenKeys | None, heartbeat_s: float,
                   receiver: asyncio.Task, hub: LiveHub) -> None:
    """Send queued messages (dropping repeats) and heartbeats until the client leaves, the hub fails us, the token
    expires or is revoked, or the client sends something it must not."""
    while True:
        if viewer.failed is not None:
            code = CLOSE_SLOW_CONSUMER if viewer.failed.startswith("slow consumer") else CLOSE_RECONNECT
            raise Closed(code, viewer.failed)
        if (ended := await session.ended()) is not None:
            raise Closed(CLOSE_UNAUTHORIZED, ended)
        if receiver.done():
            refused = receiver.result()
            raise refused if refused is not None else WebSocketDisconnect()
        getter = asyncio.ensure_future(viewer.queue.get())
        waker = asyncio.ensure_future(viewer.wakeup.wait())
        done, _ = await asyncio.wait({getter, waker, receiver}, timeout=min(heartbeat_s, session.wait_s()),
                                     return_when=asyncio.FIRST_COMPLETED)
        waker.cancel()
        if getter not in done:
            getter.cancel()
            if not done and session.wait_s() > 0:
                await send({"type": "heartbeat", "ts_ms": int(time.time() * 1000)})
            continue
        message = getter.result()
        if seen is None or seen.first_time(message_key(message)):
            await send(withhold(message, hub.privacy))  # the consent as of now, not as of when it was queued


async def _drain_client(websocket: WebSocket, max_bytes: int) -> Closed | None:
    """Read (and ignore) what the client sends, so a disconnect is noticed at once; a message over `max_bytes`
    ends the socket (1009). Clients have nothing to send: authentication came with the handshake."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return None
            size = len(message.get("bytes") or b"") + len((message.get("text") or "").encode())
            if size > max_bytes:
                return Closed(CLOSE_TOO_BIG, f"client messages are limited to {max_bytes} bytes")
    return None
