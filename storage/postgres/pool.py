"""asyncpg pool factory with the plan's tuning (§1.3) and JSON codecs; database admin helpers.

asyncpg has no "overflow": the pool holds `db_pool_size` connections and grows to
`db_pool_size + db_max_overflow` under load. `max_inactive_connection_lifetime` plays
`pool_recycle`; `statement_timeout` is set server-side per connection; acquiring waits at most
`db_pool_timeout_s` (see `acquire`). Every connection uses `settings.database_dsn`: DATABASE_URL with
DATABASE_SSLMODE / DATABASE_SSLROOTCERT (docs/SECURITY.md §7).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import msgspec

from config.settings import Settings
from storage.postgres.query_timing import query_logger

_json_encode = msgspec.json.encode
_json_decode = msgspec.json.decode


async def _init_connection(conn: asyncpg.Connection) -> None:
    for type_name in ("json", "jsonb"):
        await conn.set_type_codec(
            type_name,
            encoder=lambda value: _json_encode(value).decode(),
            decoder=_json_decode,
            schema="pg_catalog",
        )


async def _init_pooled_connection(conn: asyncpg.Connection) -> None:
    """Pooled connections (the services) are timed: db_query_duration_seconds (query_timing.py)."""
    conn.add_query_logger(query_logger())
    await _init_connection(conn)


def pool_options(settings: Settings, application_name: str) -> dict[str, Any]:
    return {
        "min_size": settings.db_pool_size,
        "max_size": settings.db_pool_size + settings.db_max_overflow,
        "timeout": settings.db_connect_timeout_s,
        "command_timeout": settings.db_statement_timeout_ms / 1000 if settings.db_statement_timeout_ms else None,
        "max_inactive_connection_lifetime": settings.db_pool_recycle_s,
        "server_settings": {
            "statement_timeout": str(settings.db_statement_timeout_ms),
            "application_name": application_name,
        },
        "init": _init_pooled_connection,
    }


async def create_pool(settings: Settings, application_name: str = "autoins", **overrides: Any) -> asyncpg.Pool:
    """A connected pool; sizes and timeouts from settings, `overrides` for tools (e.g. min_size=1)."""
    options = {**pool_options(settings, application_name), **overrides}
    return await asyncpg.create_pool(settings.database_dsn, **options)


@dataclass(frozen=True)
class PoolUse:
    """A pool's connections now: `available` = idle + room to grow; 0 means the next acquire waits."""

    size: int
    idle: int
    max_size: int

    @property
    def available(self) -> int:
        return self.idle + max(0, self.max_size - self.size)


def pool_use(pool: asyncpg.Pool) -> PoolUse:
    return PoolUse(pool.get_size(), pool.get_idle_size(), pool.get_max_size())


@asynccontextmanager
async def acquire(pool: asyncpg.Pool, settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    """`pool.acquire` bounded by `db_pool_timeout_s`: a starved pool is an error, not a hang."""
    async with pool.acquire(timeout=settings.db_pool_timeout_s) as conn:
        yield conn


async def connect(settings: Settings, application_name: str = "autoins") -> asyncpg.Connection:
    """One connection with the same codecs and timeouts (CLI tools, migrations)."""
    conn = await asyncpg.connect(
        settings.database_dsn,
        timeout=settings.db_connect_timeout_s,
        server_settings={
            "statement_timeout": str(settings.db_statement_timeout_ms),
            "application_name": application_name,
        },
    )
    await _init_connection(conn)
    return conn


def with_database(url: str, database: str) -> str:
    """The same server URL pointing at another database."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def create_database_if_missing(url: str, timeout_s: float = 10.0) -> bool:
    """Create the URL's database via the server's `postgres` database; True if it was created."""
    database = urlsplit(url).path.lstrip("/") or "postgres"
    conn = await asyncpg.connect(with_database(url, "postgres"), timeout=timeout_s)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if exists:
            return False
        try:
            await conn.execute(f"CREATE DATABASE {quote_ident(database)}")
        except asyncpg.DuplicateDatabaseError:  # created concurrently: fine
            return False
        return True
    finally:
        await conn.close()


async def drop_database(url: str, timeout_s: float = 10.0) -> None:
    database = urlsplit(url).path.lstrip("/")
    conn = await asyncpg.connect(with_database(url, "postgres"), timeout=timeout_s)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {quote_ident(database)} WITH (FORCE)")
    finally:
        await conn.close()


def plain(value: Any) -> Any:
    """asyncpg's own UUID subclass as a plain `uuid.UUID` (msgspec, equality, pickling); anything else as is."""
    if isinstance(value, uuid.UUID) and type(value) is not uuid.UUID:
        return uuid.UUID(bytes=value.bytes)
    return value
