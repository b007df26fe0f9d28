"""A live socket's session: who it is, until when, and whether it was revoked (docs/SECURITY.md §8–9).

`authenticate` reads the bearer token offered as a subprotocol before the socket is accepted and checks it like
the API does (signature, claims, expiry, the user's token version). Afterwards `SocketSession.ended` says when
to close: at the token's `exp`, or once its version is no longer current — re-read at least every
`session_check_ttl_s`, and at once when the `cache:invalidate` channel names the user (this replica follows it,
like the API's replicas).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator

import asyncpg
import redis.asyncio as aioredis
from fastapi import HTTPException, WebSocket

from config.logging import get_logger
from config.settings import Settings
from deployments.api.auth import Principal, decode_with_expiry
from deployments.live_hub import Viewer
from deployments.ws_protocol import bearer_from_subprotocols
from storage.postgres.token_versions import PostgresTokenVersions
from storage.redis.invalidation import RedisSessionNotifier, follow
from usecases.sessions import Sessions

_log = get_logger("autoins.websocket")


class LiveSessions:
    """The replica's token versions and the open sockets to re-check when a user's sessions change."""

    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions
        self.watched: dict[str, set[SocketSession]] = {}
        sessions.on_change(self._changed)

    def _changed(self, user_ids: frozenset[str] | None) -> None:
        ids = self.watched.keys() if user_ids is None else user_ids
        for user_id in tuple(ids):
            for session in tuple(self.watched.get(user_id, ())):
                session.poke()


class SocketSession:
    def __init__(self, live: LiveSessions, principal: Principal, expires_at_s: float) -> None:
        self.live, self.principal, self.expires_at_s = live, principal, expires_at_s
        self._next_check_s = time.monotonic() + live.sessions.ttl_s
        self._viewer: Viewer | None = None
        self._poked = False

    def wait_s(self) -> float:
        """Seconds until the socket must look again (its expiry or its next version check), never negative."""
        return max(0.0, min(self.expires_at_s - time.time(), self._next_check_s - time.monotonic()))

    async def ended(self) -> str | None:
        """Why the socket must close now (expired or revoked), else None."""
        if time.time() >= self.expires_at_s:
            return "token expired: log in again"
        if not self._poked and time.monotonic() < self._next_check_s:
            return None
        if self._poked and self._viewer is not None and self._viewer.failed is None:
            self._viewer.wakeup.clear()
        self._poked = False
        self._next_check_s = time.monotonic() + self.live.sessions.ttl_s
        return await self.live.sessions.revocation(self.principal.user_id, self.principal.token_version)

    def poke(self) -> None:
        self._poked = True
        if self._viewer is not None:
            self._viewer.wakeup.set()

    @contextlib.contextmanager
    def watching(self, viewer: Viewer) -> Iterator[None]:
        self._viewer = viewer
        watched = self.live.watched.setdefault(self.principal.user_id, set())
        watched.add(self)
        try:
            yield
        finally:
            watched.discard(self)
            if not watched:
                self.live.watched.pop(self.principal.user_id, None)


async def authenticate(websocket: WebSocket, settings: Settings, live: LiveSessions) -> SocketSession | None:
    """The session of the token offered as a subprotocol, or None (logged) to refuse the handshake."""
    token = bearer_from_subprotocols(websocket.scope.get("subprotocols") or ())
    reason = "no bearer token offered as a subprotocol (autoins.v1 + bearer.<jwt>)"
    if token is not None:
        try:
            principal, expires_at_s = decode_with_expiry(settings, token)
            reason = await live.sessions.revocation(principal.user_id, principal.token_version)
            if reason is None:
                return SocketSession(live, principal, expires_at_s)
        except HTTPException as error:
            reason = str(error.detail)
    _log.info("websocket_refused", path=websocket.url.path, reason=reason)
    return None


@contextlib.asynccontextmanager
async def open_sessions(settings: Settings, pool: asyncpg.Pool, redis: aioredis.Redis) -> AsyncIterator[LiveSessions]:
    """The replica's sessions, following `cache:invalidate` in the background while the app runs."""
    sessions = Sessions(PostgresTokenVersions(pool, settings), RedisSessionNotifier(redis),
                        ttl_s=settings.session_check_ttl_s)
    live = LiveSessions(sessions)
    listener = asyncio.create_task(follow(redis, (sessions,), listening=asyncio.Event()), name="ws-sessions")
    try:
        yield live
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await listener
