"""InMemoryResponseCache: the ResponseCache port as one dict (one replica, no TTL expiry), for handler tests.
Same contract as storage.redis.cache.MultiLevelCache (tests/contracts/cache.py): a stored answer is served
without loading, None is never stored, invalidation drops every entry of the named drivers."""

from __future__ import annotations

from collections.abc import Iterable

from usecases.ports.cache import Loader


class InMemoryResponseCache:
    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], bytes] = {}
        self.loads = 0

    async def get(self, driver_id: str, name: str, loader: Loader, ttl_s: int) -> bytes | None:
        key = (driver_id, name)
        if key in self.entries:
            return self.entries[key]
        value = await loader()
        self.loads += 1
        if value is not None:
            self.entries[key] = value
        return value

    async def invalidate(self, driver_ids: Iterable[str]) -> None:
        drop = set(driver_ids)
        for key in [k for k in self.entries if k[0] in drop]:
            del self.entries[key]
