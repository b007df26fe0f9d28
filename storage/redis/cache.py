"""Multi-level response cache (plan §2.3): L1 in-process TTLCache → L2 Redis → loader (PostgreSQL).

Entries are JSON bytes scoped to one driver. Invalidation, without KEYS or SCAN:
- L2 keys are versioned: `cache:v1:{driver_id}:{gen}:{name}`, where `gen` is the counter
  `cache:gen:{driver_id}` that every writer INCRs *after* committing a change to that driver's data
  (the pipeline's projection script, the scorer, admin writes via `invalidate`). A stale L2 entry is
  never read again and expires by its TTL. A reader reads `gen` before loading, so a load that raced
  a change is stored under the old generation and is dead on arrival.
- L1 entries are indexed by driver id and dropped when a `cache:invalidate` message names the driver
  (`listen`, one subscriber per replica). A load that raced an invalidation is not kept in L1 (per-driver
  epochs). Staleness bound: the pub/sub latency; if a message is lost, at most `l1_ttl_s` (and the
  listener clears all of L1 after every reconnect, since messages may have been missed).
Redis trouble never fails a read: L2 errors count as misses and the loader answers.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence

import redis.asyncio as aioredis
import structlog
from cachetools import TTLCache

from storage.redis.invalidation import REDIS_ERRORS, InvalidationHandler, follow
from storage.redis.keys import INVALIDATE_CHANNEL, LUA_KEYS, generation_key, l2_key
from storage.redis.projections import invalidation_payload

log = structlog.get_logger("storage.redis.cache")

MAX_PENDING_LATENCIES = 50_000
_MAX_EPOCHS = 100_000  # per-driver invalidation epochs kept before a reset (bounds memory)

# One round trip for an L1 miss: the driver's generation, then the entry stored under it. KEYS[1] is the
# generation key; ARGV: 1 driver id, 2 entry name (the L2 key is built in Lua by keys.py's `l2_key` twin).
_READ_SCRIPT = LUA_KEYS + """
local gen = redis.call('GET', KEYS[1]) or '0'
return {gen, redis.call('GET', l2_key(ARGV[1], gen, ARGV[2])) or false}
"""

Loader = Callable[[], Awaitable[bytes | None]]
LookupHook = Callable[[str, bool], None]  # (level "l1" | "l2", hit)


class MultiLevelCache:
    """Per-replica cache object. `get` is safe to call concurrently; `listen` runs as one background task."""

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        l1_ttl_s: float,
        l1_maxsize: int,
        on_lookup: LookupHook | None = None,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis = redis
        self._l1: TTLCache[tuple[str, str], bytes] = TTLCache(maxsize=l1_maxsize, ttl=l1_ttl_s, timer=timer)
        self._l1_maxsize = l1_maxsize
        self._index: dict[str, set[tuple[str, str]]] = {}
        self._epochs: dict[str, int] = {}
        self._reset_epoch = 0
        self._stats: Counter[str] = Counter()
        self._latencies: list[tuple[str, float]] = []
        self._on_lookup = on_lookup
        self._read = redis.register_script(_READ_SCRIPT)
        self.listening = asyncio.Event()  # set while subscribed to cache:invalidate

    # -- reads -------------------------------------------------------------------------------------

    async def get(self, driver_id: str, name: str, loader: Loader, ttl_s: int) -> bytes | None:
        """The entry from L1, else L2, else `loader()` (stored in both). A loader answering None (e.g. not
        found) is not cached."""
        key = (driver_id, name)
        value = self._l1.get(key)
        self._count("l1", value is not None)
        if value is not None:
            return value
        epoch = self._epoch(driver_id)
        generation, value = await self._read_l2(driver_id, name)
        if value is not None:
            self._count("l2", True)
            self._keep_l1(key, value, epoch)
            return value
        self._count("l2", False)
        value = await loader()
        self._stats["loads"] += 1
        if value is None:
            return None
        if generation is not None and ttl_s > 0:
            try:
                started = time.perf_counter()
                await self._redis.set(l2_key(driver_id, generation, name), value, ex=ttl_s)
                self._timed("l2_write", started)
            except REDIS_ERRORS as error:
                self._stats["l2_errors"] += 1
                log.warning("cache_l2_write_failed", error=str(error))
        self._keep_l1(key, value, epoch)
        return value

    async def _read_l2(self, driver_id: str, name: str) -> tuple[str | None, bytes | None]:
        started = time.perf_counter()
        try:
            generation, value = await self._read(keys=[generation_key(driver_id)], args=[driver_id, name])
            self._timed("l2_read", started)
        except REDIS_ERRORS as error:
            self._stats["l2_errors"] += 1
            log.warning("cache_l2_read_failed", error=str(error))
            return None, None
        return generation.decode(), value

    def _keep_l1(self, key: tuple[str, str], value: bytes, epoch: tuple[int, int]) -> None:
        if self._epoch(key[0]) != epoch:  # invalidated while we were loading: the value may be stale
            return
        self._l1[key] = value
        self._index.setdefault(key[0], set()).add(key)
        if len(self._index) > 2 * self._l1_maxsize:  # drop index entries whose L1 entries expired
            live = set(self._l1.keys())
            self._index = {d: keys & live for d, keys in self._index.items() if keys & live}

    def _timed(self, operation: str, started: float) -> None:
        if len(self._latencies) < MAX_PENDING_LATENCIES:  # bounded if nobody drains
            self._latencies.append((operation, time.perf_counter() - started))

    def drain_latencies(self) -> list[tuple[str, float]]:
        """(operation, seconds) of the Redis calls since the last drain: `cache_latency_seconds` is recorded
        from these in the background (a Ray metric call per lookup would cost the request path)."""
        latencies, self._latencies = self._latencies, []
        return latencies

    def _epoch(self, driver_id: str) -> tuple[int, int]:
        return self._reset_epoch, self._epochs.get(driver_id, 0)

    def _count(self, level: str, hit: bool) -> None:
        self._stats[f"{level}_{'hits' if hit else 'misses'}"] += 1
        if self._on_lookup is not None:
            self._on_lookup(level, hit)

    # -- invalidation ------------------------------------------------------------------------------

    def drop_local(self, driver_ids: Iterable[str]) -> int:
        """Drop these drivers' L1 entries; returns how many entries went."""
        dropped = 0
        for driver_id in driver_ids:
            self._epochs[driver_id] = self._epochs.get(driver_id, 0) + 1
            for key in self._index.pop(driver_id, ()):
                dropped += self._l1.pop(key, None) is not None
        if len(self._epochs) > _MAX_EPOCHS:
            self._epochs.clear()
            self._reset_epoch += 1
        self._stats["l1_invalidated"] += dropped
        return dropped

    def clear_local(self) -> None:
        self._l1.clear()
        self._index.clear()
        self._epochs.clear()
        self._reset_epoch += 1

    async def invalidate(self, driver_ids: Iterable[str]) -> None:
        """After a committed write: bump the drivers' generations (L2) and tell every replica (L1)."""
        ids = sorted(set(driver_ids))
        if not ids:
            return
        self.drop_local(ids)
        pipe = self._redis.pipeline(transaction=False)
        for driver_id in ids:
            pipe.incr(generation_key(driver_id))
        pipe.publish(INVALIDATE_CHANNEL, invalidation_payload(ids))
        await pipe.execute()

    async def listen(self, *, others: Sequence[InvalidationHandler] = (), backoff_max_s: float = 5.0) -> None:
        """Follow `cache:invalidate` until cancelled (storage.redis.invalidation), for this cache and `others`
        (the replica's sessions), reconnecting with backoff when Redis drops."""
        await follow(self._redis, (self, *others), listening=self.listening, on_reconnect=self._reconnected,
                     backoff_max_s=backoff_max_s)

    def _reconnected(self) -> None:
        self._stats["listener_reconnects"] += 1

    # InvalidationHandler
    def drivers_changed(self, driver_ids: Iterable[str]) -> None:
        self.drop_local(driver_ids)

    def users_changed(self, user_ids: Iterable[str]) -> None:
        """Logins are not cached here."""

    def missed(self) -> None:
        self.clear_local()

    # -- observability -----------------------------------------------------------------------------

    def stats(self) -> dict[str, int]:
        """Counters since start: l1_/l2_ hits/misses, loads, l2_errors, l1_invalidated, l1_size."""
        keys = ("l1_hits", "l1_misses", "l2_hits", "l2_misses", "loads", "l2_errors", "l1_invalidated",
                "listener_reconnects")
        return {**{k: self._stats[k] for k in keys}, "l1_size": len(self._l1)}
