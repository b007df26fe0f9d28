"""The traffic split of a staged rollout in Redis (`rollout:{target}`, storage/redis/keys.py).

`autoins rollout` writes it at each step and deletes it at the end; every API replica reads it at most once per
`check_s` (a GET per replica per second, off the request path's critical cost). Any failure to read means no
canary traffic: with Redis gone, every client is served by the stable side, which is where a rollback would send
them anyway.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import redis.asyncio as aioredis

from config.logging import get_logger
from domain.rollout import TrafficSplit
from storage.redis.keys import rollout_key

_log = get_logger("autoins.rollout")


class RedisTrafficSplits:
    """Writer side (the rollout command)."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis

    async def read(self, target: str) -> TrafficSplit | None:
        return TrafficSplit.decode(await self._redis.get(rollout_key(target)))

    async def begin(self, split: TrafficSplit) -> TrafficSplit | None:
        """SET NX: one rollout per target at a time. None when this one began, else the split in force."""
        if await self._redis.set(rollout_key(split.target), split.encode(), nx=True):
            return None
        return await self.read(split.target) or split

    async def write(self, split: TrafficSplit) -> None:
        await self._redis.set(rollout_key(split.target), split.encode())

    async def clear(self, target: str) -> None:
        await self._redis.delete(rollout_key(target))


class CachedTrafficSplit:
    """Reader side (each replica): the split as of at most `check_s` ago; None (stable side) when unknown."""

    def __init__(self, target: str, check_s: float, redis: Callable[[], aioredis.Redis | None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._key = rollout_key(target)
        self._check_s = check_s
        self._redis = redis  # a callable: the replica's client exists only once its lifespan has started
        self._clock = clock
        self._split: TrafficSplit | None = None
        self._checked_at = float("-inf")
        self._failed = False

    async def current(self) -> TrafficSplit | None:
        now = self._clock()
        if now - self._checked_at < self._check_s:
            return self._split
        self._checked_at = now
        client = self._redis()
        if client is None:
            return None
        try:
            self._split = TrafficSplit.decode(await client.get(self._key))
            self._failed = False
        except Exception as error:  # redis down or slow: the stable side serves everyone
            self._split = None
            if not self._failed:
                _log.warning("traffic split unreadable: serving every client on the stable side",
                             key=self._key, error=str(error)[:200])
            self._failed = True
        return self._split
