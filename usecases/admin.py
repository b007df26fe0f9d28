"""The back office's writes (and the reads beside them): drivers, policies and logins.

Every committed write that changes what a driver's cached answers show invalidates that driver on every
replica (the response cache port) — after the write, never before, so no replica re-caches the old row.
Likewise a login's disable, role change, driver reassignment, password change or deletion revokes its tokens
after the commit (`Sessions.revoke`; a login minted before the commit would carry the old role).
Passwords are hashed by the injected `hash_password` (argon2id, off the event loop, in deployments/api/auth).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from domain.sessions import revokes_sessions
from usecases.ports.admin_store import AdminStore, Conflict
from usecases.ports.cache import ResponseCache
from usecases.ports.read_models import Row
from usecases.sessions import Sessions

PasswordHasher = Callable[[str], Awaitable[str]]


class AdminWrites:
    def __init__(self, store: AdminStore, cache: ResponseCache, hash_password: PasswordHasher,
                 sessions: Sessions) -> None:
        self.store = store
        self.cache = cache
        self.hash_password = hash_password
        self.sessions = sessions

    # -- drivers ------------------------------------------------------------------------------------

    async def list_drivers(self, limit: int, offset: int, is_active: bool | None) -> tuple[int, Sequence[Row]]:
        return await self.store.list_drivers(limit, offset, is_active)

    async def get_driver(self, driver_id: str) -> Row | None:
        return await self.store.get_driver(driver_id)

    async def create_driver(self, driver_id: str, fields: Mapping[str, Any]) -> Row:
        row = await self.store.create_driver(driver_id, fields)
        await self.cache.invalidate([driver_id])  # a cached 404 is not kept, but an earlier run's L2 might be
        return row

    async def update_driver(self, driver_id: str, changes: Mapping[str, Any]) -> Row | None:
        row = await self.store.update_driver(driver_id, changes)
        if row is not None:
            await self.cache.invalidate([driver_id])
        return row

    async def delete_driver(self, driver_id: str) -> bool:
        deleted = await self.store.delete_driver(driver_id)
        if deleted:
            await self.cache.invalidate([driver_id])
        return deleted

    # -- policies (a driver's policies list and quote change with them) ----------------------------

    async def list_policies(self, limit: int, offset: int, status: str | None,
                            driver_id: str | None) -> tuple[int, Sequence[Row]]:
        return await self.store.list_policies(limit, offset, status, driver_id)

    async def get_policy(self, policy_id: uuid.UUID) -> Row | None:
        return await self.store.get_policy(policy_id)

    async def create_policy(self, fields: Mapping[str, Any]) -> Row:
        row = await self.store.create_policy(fields)
        await self.cache.invalidate([row["driver_id"]])
        return row

    async def update_policy(self, policy_id: uuid.UUID, changes: Mapping[str, Any]) -> Row | None:
        row = await self.store.update_policy(policy_id, changes)
        if row is not None:
            await self.cache.invalidate([row["driver_id"]])
        return row

    async def delete_policy(self, policy_id: uuid.UUID) -> bool:
        driver_id = await self.store.delete_policy(policy_id)
        if driver_id is None:
            return False
        await self.cache.invalidate([driver_id])
        return True

    # -- logins (no driver data cached from them) --------------------------------------------------

    async def list_users(self, limit: int, offset: int, role: str | None) -> tuple[int, Sequence[Row]]:
        return await self.store.list_users(limit, offset, role)

    async def get_user(self, user_id: uuid.UUID) -> Row | None:
        return await self.store.get_user(user_id)

    async def create_user(self, *, username: str, password: str, role: str, driver_id: str | None) -> Row:
        password_hash = await self.hash_password(password)
        return await self.store.create_user(username=username, password_hash=password_hash, role=role,
                                            driver_id=driver_id)

    async def update_user(self, user_id: uuid.UUID, changes: Mapping[str, Any]) -> Row | None:
        changes = dict(changes)
        if "password" in changes:
            changes["password_hash"] = await self.hash_password(changes.pop("password"))
        row = await self.store.update_user(user_id, changes)
        if row is not None and revokes_sessions(changes):
            await self.sessions.revoke([str(user_id)])
        return row

    async def delete_user(self, user_id: uuid.UUID, *, by_user_id: str) -> bool:
        """Raises Conflict when an admin deletes their own login (they would lock themselves out)."""
        if by_user_id == str(user_id):
            raise Conflict("you cannot delete your own login")
        deleted = await self.store.delete_user(user_id)
        if deleted:
            await self.sessions.revoke([str(user_id)])
        return deleted
