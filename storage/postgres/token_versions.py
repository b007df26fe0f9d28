"""PostgresTokenVersions: the TokenVersionStore port over `token_versions` (migration 0009). SQL only."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from config.settings import Settings
from domain.sessions import FIRST_VERSION
from storage.postgres.pool import acquire

# A user without a row is at FIRST_VERSION: the first bump stores FIRST_VERSION + 1.
BUMP = ("INSERT INTO token_versions (user_id, version) SELECT u, $2::integer + 1 FROM unnest($1::text[]) AS u"
        " ON CONFLICT (user_id) DO UPDATE SET version = token_versions.version + 1, changed_at = now()")
CURRENT = "SELECT version FROM token_versions WHERE user_id = $1"


class PostgresTokenVersions:
    def __init__(self, pool: asyncpg.Pool, settings: Settings) -> None:
        self.pool = pool  # its own reference: tests that swap the app's pool for a counting one do not see these
        self.settings = settings

    async def current(self, user_id: str) -> int:
        async with acquire(self.pool, self.settings) as conn:
            version = await conn.fetchval(CURRENT, user_id)
        return FIRST_VERSION if version is None else version

    async def bump(self, user_ids: Sequence[str]) -> None:
        async with acquire(self.pool, self.settings) as conn:
            await conn.execute(BUMP, sorted(set(user_ids)), FIRST_VERSION)
