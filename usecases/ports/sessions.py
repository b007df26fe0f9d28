"""TokenVersionStore: the durable per-user token versions (docs/SECURITY.md §8).

`current(user_id)` is the user's version (`domain.sessions.FIRST_VERSION` when none is stored);
`bump(user_ids)` adds one to each and stores it durably before returning. Announcing the change to other
replicas is `SessionNotifier.announce_users_changed`, called after `bump`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class TokenVersionStore(Protocol):
    async def current(self, user_id: str) -> int: ...

    async def bump(self, user_ids: Sequence[str]) -> None: ...


class SessionNotifier(Protocol):
    async def announce_users_changed(self, user_ids: Sequence[str]) -> None: ...
