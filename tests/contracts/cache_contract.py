"""The ResponseCache contract (usecases.ports.cache): run on InMemoryResponseCache in the unit suite and on
storage.redis.cache.MultiLevelCache (L1 + Redis) in the integration suite. Each check uses fresh driver ids."""

from __future__ import annotations

import uuid

from usecases.ports.cache import ResponseCache


class Source:
    def __init__(self, value: bytes | None) -> None:
        self.value = value
        self.loads = 0

    async def __call__(self) -> bytes | None:
        self.loads += 1
        return self.value


def _driver() -> str:
    return f"contract-{uuid.uuid4().hex[:12]}"


async def a_stored_answer_is_served_without_loading_again(cache: ResponseCache) -> None:
    driver, source = _driver(), Source(b'{"a":1}')
    assert await cache.get(driver, "profile", source, 60) == b'{"a":1}'
    assert await cache.get(driver, "profile", source, 60) == b'{"a":1}'
    assert source.loads == 1


async def a_missing_answer_is_never_stored(cache: ResponseCache) -> None:
    driver, source = _driver(), Source(None)
    assert await cache.get(driver, "profile", source, 60) is None
    assert await cache.get(driver, "profile", source, 60) is None
    assert source.loads == 2


async def entries_are_kept_apart_by_driver_and_name(cache: ResponseCache) -> None:
    one, two = _driver(), _driver()
    assert await cache.get(one, "profile", Source(b"1p"), 60) == b"1p"
    assert await cache.get(one, "score", Source(b"1s"), 60) == b"1s"
    assert await cache.get(two, "profile", Source(b"2p"), 60) == b"2p"


async def invalidation_drops_every_entry_of_the_driver_and_only_theirs(cache: ResponseCache) -> None:
    one, two = _driver(), _driver()
    for driver in (one, two):
        for name in ("profile", "trips:1:20"):
            await cache.get(driver, name, Source(b"old"), 60)
    await cache.invalidate([one])
    fresh = Source(b"new")
    assert await cache.get(one, "profile", fresh, 60) == b"new"
    assert await cache.get(one, "trips:1:20", fresh, 60) == b"new"
    assert await cache.get(two, "profile", fresh, 60) == b"old"
    assert fresh.loads == 2


async def invalidating_nobody_or_an_unknown_driver_changes_nothing(cache: ResponseCache) -> None:
    driver = _driver()
    await cache.get(driver, "profile", Source(b"kept"), 60)
    await cache.invalidate([])
    await cache.invalidate([_driver()])
    assert await cache.get(driver, "profile", Source(b"other"), 60) == b"kept"


CONTRACT = [
    a_stored_answer_is_served_without_loading_again,
    a_missing_answer_is_never_stored,
    entries_are_kept_apart_by_driver_and_name,
    invalidation_drops_every_entry_of_the_driver_and_only_theirs,
    invalidating_nobody_or_an_unknown_driver_changes_nothing,
]
