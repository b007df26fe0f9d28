"""Migrated test databases: shared by the event store tests and the `migrated_settings` fixture (conftest.py).

A migrated database has every migration applied and the partition window (retention cutoff .. months
ahead of `now`) created, like one after `autoins migrate`.
"""

from __future__ import annotations

import os
import secrets
from datetime import UTC, datetime

from config.settings import Settings
from storage.postgres.migrations import apply_migrations
from storage.postgres.partitions import ensure_window
from storage.postgres.pool import connect, create_database_if_missing, with_database


async def migrate_database(settings: Settings, now: datetime | None = None) -> None:
    """Apply pending migrations to `settings.database_url` and ensure its partition window."""
    conn = await connect(settings, application_name="autoins-tests-migrate")
    try:
        await apply_migrations(conn, settings.migrations_dir)
        await ensure_window(conn, now or datetime.now(UTC), settings.retention_months, settings.partitions_ahead_months)
    finally:
        await conn.close()


async def create_migrated_database(settings: Settings, prefix: str = "autoins_m", now: datetime | None = None) -> str:
    """A new uniquely named database on settings' server, migrated; returns its URL (drop it when done)."""
    url = with_database(settings.database_url, f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}")
    await create_database_if_missing(url)
    await migrate_database(settings.with_overrides(database_url=url), now)
    return url
