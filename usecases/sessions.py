"""Sessions: is a token still good, and revoke a user's tokens (docs/SECURITY.md §8).

A token is good while its `ver` is its user's current token version. Each replica keeps the versions it read
for at most `ttl_s` and forgets a user at once when an invalidation names them (`users_changed`, the same
`cache:invalidate` channel the response cache follows; `missed` after a reconnect forgets everyone). So a
revocation takes effect on every replica within the pub/sub latency, and within `ttl_s` even if the message is
lost. A read that raced an invalidation is used once and not kept.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from domain.sessions import revocation_reason
from usecases.ports.clock import Clock, SystemClock
from usecases.ports.sessions import SessionNotifier, TokenVersionStore

ChangeHook = Callable[[frozenset[str] | None], None]  # the users whose sessions changed; None: maybe anyone


class Sessions:
    """One per replica. `revocation` is safe to call concurrently; `users_changed`/`missed` come from the listener."""

    def __init__(self, store: TokenVersionStore, notifier: SessionNotifier, *, ttl_s: float, maxsize: int = 10_000,
                 clock: Clock | None = None) -> None:
        self.store = store
        self.notifier = notifier
        self.ttl_s = ttl_s
        self._maxsize = maxsize
        self._clock = clock if clock is not None else SystemClock()
        self._versions: dict[str, tuple[int, float]] = {}  # user id → (version, read at)
        self._epoch = 0  # moves with every forget: a read that straddles one is not kept
        self._hooks: list[ChangeHook] = []

    async def revocation(self, user_id: str, token_version: int) -> str | None:
        """None while the token is good; else the reason it is revoked."""
        return revocation_reason(token_version, await self.current(user_id))

    async def current(self, user_id: str) -> int:
        now = self._clock.monotonic_s()
        kept = self._versions.get(user_id)
        if kept is not None and now - kept[1] < self.ttl_s:
            return kept[0]
        epoch = self._epoch
        version = await self.store.current(user_id)
        if epoch == self._epoch:
            if len(self._versions) >= self._maxsize:
                self._versions.clear()
            self._versions[user_id] = (version, now)
        return version

    async def revoke(self, user_ids: Iterable[str]) -> None:
        """After a committed change (or a logout): bump the users' versions durably, then tell every replica."""
        ids = sorted(set(user_ids))
        if not ids:
            return
        await self.store.bump(ids)
        self.users_changed(ids)
        await self.notifier.announce_users_changed(ids)

    def on_change(self, hook: ChangeHook) -> None:
        """Call `hook` whenever users' sessions may have changed (the WebSocket gateway re-checks their sockets)."""
        self._hooks.append(hook)

    # -- invalidation handler (storage.redis.invalidation) ---------------------------------------------

    def users_changed(self, user_ids: Iterable[str]) -> None:
        ids = frozenset(user_ids)
        self._epoch += 1
        for user_id in ids:
            self._versions.pop(user_id, None)
        for hook in self._hooks:
            hook(ids)

    def drivers_changed(self, driver_ids: Iterable[str]) -> None:
        """Drivers' data is not sessions."""

    def missed(self) -> None:
        self._epoch += 1
        self._versions.clear()
        for hook in self._hooks:
            hook(None)
