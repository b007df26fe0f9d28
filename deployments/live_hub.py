"""One Redis pub/sub connection per replica, fanned out to the replica's local WebSockets (plan §6.1).

Channels are subscribed with a reference count: the first local viewer of `ws:driver:{id}` subscribes the
replica, the last one to leave unsubscribes it. Every viewer has a bounded queue; a viewer whose queue is
full (a slow client) is marked and dropped by its socket loop with a reason, so memory stays bounded.
If the Redis connection drops, messages may have been lost: every viewer is failed (its socket closes
with 1012 "reconnect with ?since=") and the hub reconnects on the next subscribe.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis
import redis.exceptions

from config.logging import get_logger
from domain.privacy import PrivacyState
from storage.redis.keys import PRIVACY_CHANNEL
from storage.redis.privacy import decode_privacy

REDIS_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)
_log = get_logger("autoins.live_hub")


class Viewer:
    """One socket's inbox: at most `max_queued` messages; `failed` says why the hub gave up on it."""

    def __init__(self, max_queued: int) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=max_queued)
        self.failed: str | None = None
        self.wakeup = asyncio.Event()  # set when `failed` is set, so a waiting socket loop notices

    def offer(self, message: bytes) -> None:
        if self.failed is not None:
            return
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            self.fail(f"slow consumer: more than {self.queue.maxsize} messages waiting")

    def fail(self, reason: str) -> None:
        if self.failed is None:
            self.failed = reason
            self.wakeup.set()


class LiveHub:
    """Refcounted subscriptions over one `PubSub`; `reader` dispatches every message to the channel's viewers."""

    def __init__(self, redis: aioredis.Redis,
                 load_privacy: Callable[[], Awaitable[list[PrivacyState]]] | None = None) -> None:
        self._redis = redis
        self._load_privacy = load_privacy
        # Drivers whose positions are (partly) withheld (docs/PRIVACY.md): loaded when the connection opens, then
        # kept current by `privacy:changed` on the same connection, so it is never behind a message it filters.
        self.privacy: dict[str, PrivacyState] = {}
        self._pubsub: aioredis.client.PubSub | None = None
        self._viewers: dict[str, set[Viewer]] = {}
        self._confirmed: dict[str, asyncio.Event] = {}
        self._lock = asyncio.Lock()
        self._reader: asyncio.Task | None = None
        self.messages_in = 0

    @property
    def channels(self) -> int:
        return len(self._viewers)

    async def subscribe(self, channel: str, viewer: Viewer, timeout_s: float = 5.0) -> None:
        """Returns once Redis confirmed the subscription: anything PUBLISHed after this returns reaches
        `viewer` (a resume reads the recent messages only after this, so nothing falls in between)."""
        async with self._lock:
            viewers = self._viewers.get(channel)
            if viewers is None:
                if self._pubsub is None:
                    self._pubsub = self._redis.pubsub()
                    await self._pubsub.subscribe(PRIVACY_CHANNEL)  # before loading: no change falls in between
                    if self._load_privacy is not None:
                        self.privacy = {s.driver_id: s for s in await self._load_privacy()}
                self._confirmed[channel] = asyncio.Event()
                await self._pubsub.subscribe(channel)  # only sends: the reader sees Redis's confirmation
                viewers = self._viewers[channel] = set()
                if self._reader is None or self._reader.done():
                    self._reader = asyncio.create_task(self._read(self._pubsub), name="live-hub-reader")
            viewers.add(viewer)
            confirmed = self._confirmed[channel]
        try:
            await asyncio.wait_for(confirmed.wait(), timeout_s)
        except TimeoutError:
            await self.unsubscribe(channel, viewer)
            raise

    async def unsubscribe(self, channel: str, viewer: Viewer) -> None:
        async with self._lock:
            viewers = self._viewers.get(channel)
            if viewers is None:
                return
            viewers.discard(viewer)
            if not viewers:
                del self._viewers[channel]
                self._confirmed.pop(channel, None)
                if self._pubsub is not None:
                    with contextlib.suppress(*REDIS_ERRORS):
                        await self._pubsub.unsubscribe(channel)

    async def _read(self, pubsub: aioredis.client.PubSub) -> None:
        try:
            while True:
                message = await pubsub.get_message(timeout=1.0)
                if message is None:
                    continue
                channel = message["channel"]
                channel = channel.decode() if isinstance(channel, bytes) else channel
                if message["type"] == "subscribe":
                    if (event := self._confirmed.get(channel)) is not None:
                        event.set()
                    continue
                if message["type"] != "message":
                    continue
                if channel == PRIVACY_CHANNEL:
                    if (state := decode_privacy(message["data"])) is not None:
                        self.privacy[state.driver_id] = state
                    continue
                self.messages_in += 1
                for viewer in tuple(self._viewers.get(channel, ())):
                    viewer.offer(message["data"])
        except REDIS_ERRORS as error:
            _log.warning("live_hub_disconnected", error=str(error)[:200], channels=len(self._viewers))
            await self._reset("live feed interrupted (Redis); reconnect with ?since=<last seq>")
        except RuntimeError as error:  # "pubsub connection not set": every channel was unsubscribed
            _log.debug("live_hub_idle", error=str(error))

    async def _reset(self, reason: str) -> None:
        async with self._lock:
            for viewers in self._viewers.values():
                for viewer in viewers:
                    viewer.fail(reason)
            self._viewers.clear()
            self._confirmed.clear()
            pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(*REDIS_ERRORS):
                await pubsub.aclose()

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, *REDIS_ERRORS):
                await self._reader
        await self._reset("server shutting down; reconnect with ?since=<last seq>")
