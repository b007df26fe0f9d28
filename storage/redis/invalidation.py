"""The `cache:invalidate` channel: its messages and the one loop that follows it (per replica).

Messages: `{"type": "drivers_changed", "driver_ids": […]}` (the response cache drops those drivers) and
`{"type": "users_changed", "user_ids": […]}` (sessions re-read those users' token versions; docs/SECURITY.md §8).
Readers ignore fields they do not know, so either kind passes through an older replica harmlessly. Pub/sub may
lose messages while a connection is down: after every reconnect each handler's `missed()` runs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

import msgspec
import redis.asyncio as aioredis
import redis.exceptions
import structlog

from storage.redis.keys import INVALIDATE_CHANNEL

log = structlog.get_logger("storage.redis.invalidation")
REDIS_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)
_ENCODE = msgspec.json.Encoder().encode


class InvalidationHandler(Protocol):
    def drivers_changed(self, driver_ids: Iterable[str]) -> None: ...

    def users_changed(self, user_ids: Iterable[str]) -> None: ...

    def missed(self) -> None:
        """Messages may have been lost (after a reconnect): forget everything that depends on them."""
        ...


class _Invalidation(msgspec.Struct):
    type: str
    driver_ids: list[str] = []
    user_ids: list[str] = []


_DECODE = msgspec.json.Decoder(_Invalidation).decode


def users_changed_payload(user_ids: Iterable[str]) -> bytes:
    return _ENCODE({"type": "users_changed", "user_ids": list(user_ids)})


def dispatch(payload: bytes, handlers: Sequence[InvalidationHandler]) -> None:
    try:
        message = _DECODE(payload)
    except (msgspec.DecodeError, msgspec.ValidationError):
        log.warning("invalidation_unreadable", payload=payload[:200])
        return
    for handler in handlers:
        if message.driver_ids:
            handler.drivers_changed(message.driver_ids)
        if message.user_ids:
            handler.users_changed(message.user_ids)


async def follow(redis: aioredis.Redis, handlers: Sequence[InvalidationHandler], *, listening: asyncio.Event,
                 on_reconnect: Callable[[], None] = lambda: None, backoff_max_s: float = 5.0) -> None:
    """Follow `cache:invalidate` until cancelled, reconnecting with backoff (0.1 s doubling) when Redis drops."""
    backoff_s, subscribed_before = 0.1, False
    while True:
        pubsub = redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(INVALIDATE_CHANNEL)
            if subscribed_before:  # messages may have been missed while we were away
                for handler in handlers:
                    handler.missed()
            subscribed_before, backoff_s = True, 0.1
            listening.set()
            async for message in pubsub.listen():
                if message.get("type") == "message":
                    dispatch(message["data"], handlers)
        except REDIS_ERRORS as error:
            listening.clear()
            on_reconnect()
            log.warning("invalidation_listener_disconnected", error=str(error), retry_in_s=backoff_s)
            await asyncio.sleep(backoff_s)
            backoff_s = min(backoff_s * 2, backoff_max_s)
        finally:
            listening.clear()
            with contextlib.suppress(*REDIS_ERRORS):
                await pubsub.aclose()


class RedisSessionNotifier:
    """The SessionNotifier port: one PUBLISH of `users_changed` on `cache:invalidate`."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis

    async def announce_users_changed(self, user_ids: Sequence[str]) -> None:
        await self._redis.publish(INVALIDATE_CHANNEL, users_changed_payload(user_ids))
