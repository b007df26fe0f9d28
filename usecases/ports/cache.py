"""ResponseCache: encoded answers (JSON bytes) scoped to one driver, dropped together when that driver changes.

`get(driver_id, name, loader, ttl_s)` answers a stored entry or `await loader()` (stored unless None);
`invalidate(driver_ids)` is called after a committed write and drops every entry of those drivers, on every
replica. Backend trouble never fails a read: the loader answers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol

Loader = Callable[[], Awaitable[bytes | None]]


class ResponseCache(Protocol):
    async def get(self, driver_id: str, name: str, loader: Loader, ttl_s: int) -> bytes | None: ...

    async def invalidate(self, driver_ids: Iterable[str]) -> None: ...
