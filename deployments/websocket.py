"""The `LiveGateway` app (route prefix `/ws`): live driver and fleet feeds over WebSockets (DESIGN.md §5).

Protocol (docs/OPERATIONS.md):
- `WS /ws/drivers/{driver_id}[?since=<seq>|<seq>:<type>:<stream_version>][&token=<jwt>]`: the driver
  themself or an admin (the full cursor of the last message received also replays later messages that
  share its seq, such as the trip's `risk_scored` after its `trip_ended`). Without
  `?token=` the first client message must be `{"token": "…"}` within `AUTH_TIMEOUT_S`.
- `WS /ws/fleet[?token=…]`: admins; every projected message, in `fleet_batch` chunks.
- The server sends `{"type": "hello", "replica": …}` first, then (with `since`) every held message after
  it in message order, then live messages, without gap or duplicate (subscribe → confirmed →
  read recent → skip live messages already replayed); `{"type": "heartbeat", "ts_ms": …}` when idle for
  `ws_heartbeat_s`.
- Close codes: 4400 bad `since`, 4401 missing/invalid token, 4403 not allowed, 4404 unknown driver,
  4429 slow consumer (queue full), 1012 live feed interrupted or server restarting (reconnect with since).
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
from fastapi.exceptions import HTTPException
from starlette.websockets import WebSocketState

from config.logging import configure_logging, get_logger
from config.settings import Settings
from deployments.api.auth import Principal, decode_token
from deployments.live_hub import LiveHub, Viewer
from deployments.metrics import platform_metrics
from deployments.replica import replica_name
from storage.metrics.db_metrics import sample_pool_forever
from storage.postgres.pool import acquire, create_pool
from storage.postgres.read_models import get_driver
from storage.redis.client import create_redis
from storage.redis.keys import FLEET_CHANNEL, driver_channel
from storage.redis.projections import message_order, read_recent

AUTH_TIMEOUT_S = 5.0
VIEWER_QUEUE = 1_000  # messages waiting for one socket before it is dropped as a slow consumer
SEEN_KEYS = 4_096  # per socket: recent message keys remembered to drop repeats (replays re-publish)
WS_POOL, WS_POOL_MAX = "autoins-ws", 2  # the replica's pool: its application name (`pool` tag) and size
CLOSE_BAD_REQUEST, CLOSE_UNAUTHORIZED, CLOSE_FORBIDDEN, CLOSE_NOT_FOUND = 4400, 4401, 4403, 4404
CLOSE_SLOW_CONSUMER, CLOSE_RECONNECT = 4429, 1012
_log = get_logger("autoins.websocket")
_open_sockets: dict[str, int] = {}  # per kind, this replica (the websocket_connections gauge)


class _Key(msgspec.Struct):
    seq: int = -1
    type: str = ""
    stream_version: int = 0


class _TokenMessage(msgspec.Struct):
    token: str


_DECODE_KEY = msgspec.json.Decoder(_Key).decode
_DECODE_TOKEN = msgspec.json.Decoder(_TokenMessage).decode
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


def replay(held: list[bytes], since: Since) -> list[bytes]:
    """The held messages a viewer resuming at `since` has not seen, in message order."""
    return [m for m in held if since.wants(message_key(m))]


async def authenticate(websocket: WebSocket, settings: Settings) -> Principal:
    """The token from `?token=` or the first message `{"token": …}`; Closed(4401) otherwise."""
    token = websocket.query_params.get("token")
    if not token:
        try:
            raw = await asyncio.wait_for(websocket.receive_text(), AUTH_TIMEOUT_S)
            token = _DECODE_TOKEN(raw).token
        except TimeoutError:
            raise Closed(CLOSE_UNAUTHORIZED, f"no token: send ?token= or {{\"token\": …}} within "
                                             f"{AUTH_TIMEOUT_S:g} s") from None
        except (msgspec.DecodeError, msgspec.ValidationError, KeyError, TypeError):
            raise Closed(CLOSE_UNAUTHORIZED, 'the first message must be {"token": "<jwt>"}') from None
    try:
        return decode_token(settings, token)
    except HTTPException as error:
        raise Closed(CLOSE_UNAUTHORIZED, str(error.detail)) from None


def create_ws_app(settings: Settings) -> FastAPI:
    """The FastAPI app behind `LiveGateway`; one Redis pub/sub connection and a 1–2 connection pool per replica."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.log_level, json=settings.log_json)
        platform_metrics()
        app.state.redis = create_redis(settings)
        app.state.hub = LiveHub(app.state.redis)
        app.state.pool = await create_pool(settings, application_name=WS_POOL, min_size=1, max_size=WS_POOL_MAX)
        sampler = asyncio.create_task(sample_pool_forever(WS_POOL, app.state.pool, WS_POOL_MAX))
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
    await websocket.accept()
    metrics = platform_metrics()
    _open_sockets[kind] = _open_sockets.get(kind, 0) + 1
    metrics.ws_connections.set(_open_sockets[kind], tags={"kind": kind})
    try:
        since = parse_since(websocket.query_params.get("since")) if kind == "driver" else None
        principal = await authenticate(websocket, settings)
        if kind == "fleet" and not principal.is_admin:
            raise Closed(CLOSE_FORBIDDEN, "the fleet feed is for admins")
        if kind == "driver":
            if not principal.may_read(driver_id):
                raise Closed(CLOSE_FORBIDDEN, f"you may watch only your own feed ({principal.driver_id})")
            async with acquire(app.state.pool, settings) as conn:
                if await get_driver(conn, driver_id) is None:
                    raise Closed(CLOSE_NOT_FOUND, f"driver {driver_id} does not exist")
        channel = driver_channel(driver_id) if kind == "driver" else FLEET_CHANNEL
        await _stream(websocket, settings, app.state.hub, app.state.redis, channel, driver_id, since)
    except Closed as closed:
        _log.info("websocket_closed", kind=kind, driver_id=driver_id, code=closed.code, reason=closed.reason)
        if closed.code == CLOSE_SLOW_CONSUMER:
            metrics.ws_dropped.inc(1, tags={"reason": "slow_consumer"})
        await _close(websocket, closed.code, closed.reason)
    except WebSocketDisconnect:
        pass
    finally:
        _open_sockets[kind] -= 1
        metrics.ws_connections.set(_open_sockets[kind], tags={"kind": kind})


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    if websocket.application_state == WebSocketState.CONNECTED:
        with contextlib.suppress(Exception):  # the client may be gone already
            await websocket.close(code=code, reason=reason)


async def _stream(websocket: WebSocket, settings: Settings, hub: LiveHub, redis, channel: str,
                  driver_id: str | None, since: Since | None) -> None:
    viewer = Viewer(VIEWER_QUEUE)
    await hub.subscribe(channel, viewer)  # before reading recent: nothing published after this is missed
    receiver = asyncio.create_task(_drain_client(websocket), name="ws-receive")
    try:
        await websocket.send_text(_ENCODE({
            "type": "hello", "replica": replica_name(), "channel": channel, "driver_id": driver_id,
            "since": None if since is None else since.seq, "heartbeat_s": settings.ws_heartbeat_s,
            "ts_ms": int(time.time() * 1000),
        }).decode())
        seen = SeenKeys(max(SEEN_KEYS, 2 * settings.ws_recent_messages))
        if since is not None and driver_id is not None:
            held = await read_recent(redis, driver_id, since.seq - 1 if since.after is not None else since.seq)
            for message in replay(held, since):
                if seen.first_time(message_key(message)):
                    await websocket.send_text(message.decode())
        await _forward(websocket, viewer, seen if driver_id is not None else None, settings.ws_heartbeat_s,
                       receiver)
    finally:
        receiver.cancel()
        await hub.unsubscribe(channel, viewer)


async def _forward(websocket: WebSocket, viewer: Viewer, seen: SeenKeys | None, heartbeat_s: float,
                   receiver: asyncio.Task) -> None:
    """Send queued messages (dropping repeats) and heartbeats until the client leaves or the hub fails us."""
    while True:
        if viewer.failed is not None:
            code = CLOSE_SLOW_CONSUMER if viewer.failed.startswith("slow consumer") else CLOSE_RECONNECT
            raise Closed(code, viewer.failed)
        if receiver.done():
            raise WebSocketDisconnect()
        getter = asyncio.ensure_future(viewer.queue.get())
        waker = asyncio.ensure_future(viewer.wakeup.wait())
        done, _ = await asyncio.wait({getter, waker, receiver}, timeout=heartbeat_s,
                                     return_when=asyncio.FIRST_COMPLETED)
        waker.cancel()
        if getter not in done:
            getter.cancel()
            if not done:
                await websocket.send_text(_ENCODE({"type": "heartbeat", "ts_ms": int(time.time() * 1000)}).decode())
            continue
        message = getter.result()
        if seen is None or seen.first_time(message_key(message)):
            await websocket.send_text(message.decode())


async def _drain_client(websocket: WebSocket) -> None:
    """Read (and ignore) what the client sends, so a disconnect is noticed at once."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
