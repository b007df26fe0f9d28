"""Admin SQL: drivers and policies CRUD, dashboard counts, analytics. One statement per call (two for a
page), so admin requests stay a constant number of queries too."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

import asyncpg

from config.settings import Settings
from storage.postgres import users
from storage.postgres.pool import acquire
from storage.postgres.read_models import DRIVER_COLUMNS, POLICY_COLUMNS, get_driver
from usecases.ports.admin_store import Conflict, MissingReference
from usecases.ports.read_models import Row

DRIVER_FIELDS = frozenset(
    {"first_name", "last_name", "email", "phone", "license_number", "date_of_birth", "timezone", "is_active"}
)
POLICY_FIELDS = frozenset(
    {"status", "base_premium", "current_premium", "per_km_rate", "currency", "effective_date", "expiration_date",
     "vehicle_use"}
)


# -- drivers ----------------------------------------------------------------------------------------


async def list_drivers(
    conn: asyncpg.Connection, limit: int, offset: int, active: bool | None = None
) -> tuple[int, list[asyncpg.Record]]:
    where = "WHERE $1::boolean IS NULL OR is_active = $1"
    total = await conn.fetchval(f"SELECT count(*) FROM drivers {where}", active)
    rows = await conn.fetch(
        f"SELECT {DRIVER_COLUMNS} FROM drivers {where} ORDER BY driver_id LIMIT $2 OFFSET $3", active, limit, offset
    )
    return total, rows


async def create_driver(conn: asyncpg.Connection, driver_id: str, fields: Mapping[str, Any]) -> asyncpg.Record:
    names = sorted(set(fields) & DRIVER_FIELDS)
    columns = ", ".join(("driver_id", *names))
    params = ", ".join(f"${i}" for i in range(1, len(names) + 2))
    try:
        return await conn.fetchrow(
            f"INSERT INTO drivers ({columns}) VALUES ({params}) RETURNING {DRIVER_COLUMNS}",
            driver_id,
            *(fields[n] for n in names),
        )
    except asyncpg.PostgresError as error:
        raise _driver_error(error, driver_id, fields.get("email")) from None


async def update_driver(conn: asyncpg.Connection, driver_id: str, changes: Mapping[str, Any]) -> asyncpg.Record | None:
    """None if the driver does not exist; `updated_at` moves with every change."""
    names = sorted(set(changes) & DRIVER_FIELDS)
    sets = ", ".join([*(f"{n} = ${i}" for i, n in enumerate(names, start=2)), "updated_at = now()"])
    try:
        return await conn.fetchrow(
            f"UPDATE drivers SET {sets} WHERE driver_id = $1 RETURNING {DRIVER_COLUMNS}",
            driver_id,
            *(changes[n] for n in names),
        )
    except asyncpg.PostgresError as error:
        raise _driver_error(error, driver_id, changes.get("email")) from None


async def delete_driver(conn: asyncpg.Connection, driver_id: str) -> bool:
    """False if absent; `Conflict` while a login or a policy still refers to the driver."""
    try:
        status = await conn.execute("DELETE FROM drivers WHERE driver_id = $1", driver_id)
    except asyncpg.ForeignKeyViolationError:
        raise Conflict(
            f"driver {driver_id!r} still has a login, policies or devices (revoked ones too, kept as records): "
            "delete the login and policies first, or deactivate the driver"
        ) from None
    return status.endswith(" 1")


def _driver_error(error: asyncpg.PostgresError, driver_id: str, email: str | None) -> Exception:
    constraint = getattr(error, "constraint_name", "") or ""
    if isinstance(error, asyncpg.UniqueViolationError):
        if constraint == "drivers_email_key":
            return Conflict(f"email {email!r} is already used by another driver")
        return Conflict(f"driver {driver_id!r} already exists")
    if isinstance(error, asyncpg.CheckViolationError):
        return MissingReference(f"invalid driver field ({constraint})")
    return error


# -- policies ---------------------------------------------------------------------------------------


async def list_policies(
    conn: asyncpg.Connection, limit: int, offset: int, status: str | None = None, driver_id: str | None = None
) -> tuple[int, list[asyncpg.Record]]:
    where = "WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR driver_id = $2)"
    total = await conn.fetchval(f"SELECT count(*) FROM policies {where}", status, driver_id)
    rows = await conn.fetch(
        f"SELECT {POLICY_COLUMNS} FROM policies {where} ORDER BY policy_number LIMIT $3 OFFSET $4",
        status,
        driver_id,
        limit,
        offset,
    )
    return total, rows


async def get_policy(conn: asyncpg.Connection, policy_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {POLICY_COLUMNS} FROM policies WHERE policy_id = $1", policy_id)


async def create_policy(conn: asyncpg.Connection, fields: Mapping[str, Any]) -> asyncpg.Record:
    """`fields`: driver_id, policy_number and POLICY_FIELDS (current_premium defaults to base_premium)."""
    values = {"current_premium": fields["base_premium"], **fields}
    names = sorted(set(values) & (POLICY_FIELDS | {"driver_id", "policy_number"}))
    columns = ", ".join(("policy_id", *names))
    params = ", ".join(f"${i}" for i in range(1, len(names) + 2))
    try:
        return await conn.fetchrow(
            f"INSERT INTO policies ({columns}) VALUES ({params}) RETURNING {POLICY_COLUMNS}",
            uuid.uuid4(),
            *(values[n] for n in names),
        )
    except asyncpg.PostgresError as error:
        raise _policy_error(error, fields) from None


async def update_policy(
    conn: asyncpg.Connection, policy_id: uuid.UUID, changes: Mapping[str, Any]
) -> asyncpg.Record | None:
    names = sorted(set(changes) & POLICY_FIELDS)
    sets = ", ".join([*(f"{n} = ${i}" for i, n in enumerate(names, start=2)), "updated_at = now()"])
    try:
        return await conn.fetchrow(
            f"UPDATE policies SET {sets} WHERE policy_id = $1 RETURNING {POLICY_COLUMNS}",
            policy_id,
            *(changes[n] for n in names),
        )
    except asyncpg.PostgresError as error:
        raise _policy_error(error, changes) from None


async def delete_policy(conn: asyncpg.Connection, policy_id: uuid.UUID) -> str | None:
    """The deleted policy's driver id (to invalidate caches), or None if absent."""
    return await conn.fetchval("DELETE FROM policies WHERE policy_id = $1 RETURNING driver_id", policy_id)


async def insert_missing_policies(
    conn: asyncpg.Connection, rows: list[tuple[str, str, Any, Any, str, date, date, str]]
) -> int:
    """(driver_id, policy_number, base_premium, per_km_rate, currency, effective, expiration, vehicle_use) rows,
    active, in one statement; an existing policy_number is left as it is. Returns how many were new (seed)."""
    status = await conn.execute(
        "INSERT INTO policies (policy_id, driver_id, policy_number, status, base_premium, current_premium,"
        " per_km_rate, currency, effective_date, expiration_date, vehicle_use)"
        " SELECT gen_random_uuid(), p.driver_id, p.number, 'active', p.base, p.base, p.rate, p.currency, p.eff, p.exp,"
        " p.vehicle_use"
        " FROM unnest($1::text[], $2::text[], $3::numeric[], $4::numeric[], $5::text[], $6::date[], $7::date[],"
        " $8::text[]) AS p(driver_id, number, base, rate, currency, eff, exp, vehicle_use)"
        " ON CONFLICT (policy_number) DO NOTHING",
        *(list(column) for column in zip(*rows, strict=True)),
    )
    return int(status.split()[-1])


def _policy_error(error: asyncpg.PostgresError, fields: Mapping[str, Any]) -> Exception:
    constraint = getattr(error, "constraint_name", "") or ""
    if isinstance(error, asyncpg.UniqueViolationError):
        return Conflict(f"policy number {fields.get('policy_number')!r} is taken")
    if isinstance(error, asyncpg.ForeignKeyViolationError):
        return MissingReference(f"driver {fields.get('driver_id')!r} does not exist")
    if isinstance(error, asyncpg.CheckViolationError):
        if constraint == "policies_dates_ordered":
            return MissingReference("expiration_date must be after effective_date")
        return MissingReference(f"invalid policy field ({constraint})")
    return error


# -- dashboard and analytics -----------------------------------------------------------------------


async def dashboard_counts(conn: asyncpg.Connection, now: datetime) -> asyncpg.Record:
    """One statement of cheap sub-selects. Events in the last hour are counted through the
    (driver_id, ts DESC) index per driver: cost ∝ recent events, not the month partition's size."""
    return await conn.fetchrow(
        """
        SELECT
          (SELECT count(*) FROM drivers) AS drivers,
          (SELECT count(*) FROM drivers WHERE is_active) AS active_drivers,
          (SELECT coalesce(jsonb_object_agg(status, n), '{}'::jsonb)
             FROM (SELECT status, count(*) AS n FROM policies GROUP BY status) s) AS policies_by_status,
          (SELECT count(*) FROM trips) AS trips,
          (SELECT avg(last_score)::float8 FROM policies WHERE status = 'active') AS average_risk_score,
          (SELECT coalesce(sum(c.n), 0) FROM drivers d CROSS JOIN LATERAL
             (SELECT count(*) AS n FROM telematics_events e
              WHERE e.driver_id = d.driver_id AND e.ts > $1::timestamptz - interval '1 hour'
                AND e.ts <= $1::timestamptz) c) AS events_last_hour
        """,
        now,
    )


async def risk_distribution(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Drivers per band of their latest score (DISTINCT ON over the risk_scores (driver_id, scored_at, recorded_at)
    index)."""
    return await conn.fetch(
        """
        SELECT band, count(*) AS drivers, avg(score)::float8 AS average_score
        FROM (SELECT DISTINCT ON (driver_id) driver_id, band, score FROM risk_scores
              ORDER BY driver_id, scored_at DESC, recorded_at DESC) latest
        GROUP BY band ORDER BY band
        """
    )


async def trips_daily(conn: asyncpg.Connection, since: datetime) -> list[asyncpg.Record]:
    """Per UTC day since `since`: trips, distinct drivers, km, harsh events."""
    return await conn.fetch(
        """
        SELECT (end_time AT TIME ZONE 'UTC')::date AS day, count(*) AS trips,
               count(DISTINCT driver_id) AS drivers, sum(distance_m) / 1000.0 AS distance_km,
               sum(harsh_braking_count + harsh_acceleration_count + harsh_cornering_count) AS harsh_events
        FROM trips WHERE end_time >= $1 GROUP BY 1 ORDER BY 1
        """,
        since,
    )


# -- the port -----------------------------------------------------------------------------------------


class PostgresAdminStore:
    """usecases.ports.admin_store.AdminStore over an asyncpg pool (drivers, policies here; logins in users.py)."""

    def __init__(self, pool: asyncpg.Pool, settings: Settings) -> None:
        self.pool = pool
        self.settings = settings

    async def _run(self, fn: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> Any:
        async with acquire(self.pool, self.settings) as conn:
            return await fn(conn, *args, **kwargs)

    async def list_drivers(self, limit: int, offset: int, is_active: bool | None) -> tuple[int, Sequence[Row]]:
        return await self._run(list_drivers, limit, offset, is_active)

    async def create_driver(self, driver_id: str, fields: Mapping[str, Any]) -> Row:
        return await self._run(create_driver, driver_id, fields)

    async def get_driver(self, driver_id: str) -> Row | None:
        return await self._run(get_driver, driver_id)

    async def update_driver(self, driver_id: str, changes: Mapping[str, Any]) -> Row | None:
        return await self._run(update_driver, driver_id, changes)

    async def delete_driver(self, driver_id: str) -> bool:
        return await self._run(delete_driver, driver_id)

    async def list_policies(self, limit: int, offset: int, status: str | None,
                            driver_id: str | None) -> tuple[int, Sequence[Row]]:
        return await self._run(list_policies, limit, offset, status, driver_id)

    async def create_policy(self, fields: Mapping[str, Any]) -> Row:
        return await self._run(create_policy, fields)

    async def get_policy(self, policy_id: uuid.UUID) -> Row | None:
        return await self._run(get_policy, policy_id)

    async def update_policy(self, policy_id: uuid.UUID, changes: Mapping[str, Any]) -> Row | None:
        return await self._run(update_policy, policy_id, changes)

    async def delete_policy(self, policy_id: uuid.UUID) -> str | None:
        return await self._run(delete_policy, policy_id)

    async def list_users(self, limit: int, offset: int, role: str | None) -> tuple[int, Sequence[Row]]:
        return await self._run(users.list_users, limit, offset, role)

    async def create_user(self, *, username: str, password_hash: str, role: str, driver_id: str | None) -> Row:
        return await self._run(users.create_user, username=username, password_hash=password_hash, role=role,
                               driver_id=driver_id)

    async def get_user(self, user_id: uuid.UUID) -> Row | None:
        return await self._run(users.get_user, user_id)

    async def update_user(self, user_id: uuid.UUID, changes: Mapping[str, Any]) -> Row | None:
        return await self._run(users.update_user, user_id, changes)

    async def delete_user(self, user_id: uuid.UUID) -> bool:
        return await self._run(users.delete_user, user_id)
