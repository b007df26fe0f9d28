"""Logins (`users` table): lookup for login, admin CRUD, bulk insert for the seed. SQL only.

Password hashes leave this module only through `login_row` (the login check needs it); every other
function selects `USER_COLUMNS`, which has no hash, so no response can leak one by accident.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg

from usecases.ports.admin_store import Conflict, MissingReference

USER_COLUMNS = "user_id, username, role, driver_id, is_active, created_at, last_login_at"
PATCHABLE = frozenset({"password_hash", "role", "driver_id", "is_active"})


async def login_row(conn: asyncpg.Connection, username: str) -> asyncpg.Record | None:
    """The user with its password hash and current token version (0 without a row), for the login check only."""
    return await conn.fetchrow(
        "SELECT u.user_id, u.username, u.password_hash, u.role, u.driver_id, u.is_active,"
        " coalesce(v.version, 0) AS token_version"
        " FROM users u LEFT JOIN token_versions v ON v.user_id = u.user_id::text WHERE u.username = $1",
        username,
    )


async def record_login(conn: asyncpg.Connection, user_id: uuid.UUID) -> None:
    await conn.execute("UPDATE users SET last_login_at = now() WHERE user_id = $1", user_id)


async def get_user(conn: asyncpg.Connection, user_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {USER_COLUMNS} FROM users WHERE user_id = $1", user_id)


async def list_users(
    conn: asyncpg.Connection, limit: int, offset: int, role: str | None = None
) -> tuple[int, list[asyncpg.Record]]:
    total = await conn.fetchval("SELECT count(*) FROM users WHERE $1::text IS NULL OR role = $1", role)
    rows = await conn.fetch(
        f"SELECT {USER_COLUMNS} FROM users WHERE $1::text IS NULL OR role = $1 ORDER BY username LIMIT $2 OFFSET $3",
        role,
        limit,
        offset,
    )
    return total, rows


async def create_user(
    conn: asyncpg.Connection, *, username: str, password_hash: str, role: str, driver_id: str | None
) -> asyncpg.Record:
    try:
        return await conn.fetchrow(
            "INSERT INTO users (user_id, username, password_hash, role, driver_id) VALUES ($1, $2, $3, $4, $5)"
            f" RETURNING {USER_COLUMNS}",
            uuid.uuid4(),
            username,
            password_hash,
            role,
            driver_id,
        )
    except asyncpg.PostgresError as error:
        raise _translated(error, username, driver_id) from None


async def update_user(
    conn: asyncpg.Connection, user_id: uuid.UUID, changes: Mapping[str, Any]
) -> asyncpg.Record | None:
    """Apply `changes` (keys ⊆ PATCHABLE); None if the user does not exist."""
    unknown = set(changes) - PATCHABLE
    if unknown:
        raise ValueError(f"cannot change {sorted(unknown)}")
    if not changes:
        return await get_user(conn, user_id)
    names = sorted(changes)
    sets = ", ".join(f"{name} = ${i}" for i, name in enumerate(names, start=2))
    try:
        return await conn.fetchrow(
            f"UPDATE users SET {sets} WHERE user_id = $1 RETURNING {USER_COLUMNS}",
            user_id,
            *(changes[n] for n in names),
        )
    except asyncpg.PostgresError as error:
        raise _translated(error, None, changes.get("driver_id")) from None


async def delete_user(conn: asyncpg.Connection, user_id: uuid.UUID) -> bool:
    status = await conn.execute("DELETE FROM users WHERE user_id = $1", user_id)
    return status.endswith(" 1")


async def insert_missing_users(conn: asyncpg.Connection, users: Sequence[tuple[str, str, str, str | None]]) -> int:
    """(username, password_hash, role, driver_id) rows not yet present, one statement; returns how many were new."""
    status = await conn.execute(
        "INSERT INTO users (user_id, username, password_hash, role, driver_id)"
        " SELECT gen_random_uuid(), u.username, u.hash, u.role, u.driver_id"
        " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS u(username, hash, role, driver_id)"
        " ON CONFLICT DO NOTHING",
        [u[0] for u in users],
        [u[1] for u in users],
        [u[2] for u in users],
        [u[3] for u in users],
    )
    return int(status.split()[-1])


async def existing_usernames(conn: asyncpg.Connection, usernames: Sequence[str]) -> set[str]:
    rows = await conn.fetch("SELECT username FROM users WHERE username = ANY($1::text[])", list(usernames))
    return {r["username"] for r in rows}


def _translated(error: asyncpg.PostgresError, username: str | None, driver_id: str | None) -> Exception:
    constraint = getattr(error, "constraint_name", "") or ""
    if isinstance(error, asyncpg.UniqueViolationError):
        if constraint == "users_driver_id_key":
            return Conflict(f"driver {driver_id!r} already has a login")
        return Conflict(f"username {username!r} is taken" if username else "username is taken")
    if isinstance(error, asyncpg.ForeignKeyViolationError):
        return MissingReference(f"driver {driver_id!r} does not exist")
    if isinstance(error, asyncpg.CheckViolationError):
        if constraint == "users_driver_role_has_driver":
            return MissingReference("a driver login needs a driver_id")
        return MissingReference(f"invalid value ({constraint})")
    return error
