"""PostgresCredentials: the Credentials port of usecases.login over `users` (SQL in storage.postgres.users)."""

from __future__ import annotations

import uuid

import asyncpg

from config.settings import Settings
from storage.postgres import users
from storage.postgres.pool import acquire
from usecases.ports.login import LoginRow


class PostgresCredentials:
    def __init__(self, pool: asyncpg.Pool, settings: Settings) -> None:
        self.pool = pool
        self.settings = settings

    async def login_row(self, username: str) -> LoginRow | None:
        async with acquire(self.pool, self.settings) as conn:
            row = await users.login_row(conn, username)
        if row is None:
            return None
        return LoginRow(user_id=str(row["user_id"]), role=row["role"], driver_id=row["driver_id"],
                        is_active=row["is_active"], password_hash=row["password_hash"],
                        token_version=row["token_version"])

    async def record_login(self, user_id: str) -> None:
        async with acquire(self.pool, self.settings) as conn:
            await users.record_login(conn, uuid.UUID(user_id))
