"""The drivers read model: writes that tools (the simulator, later seeding and admin) share."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

# One statement for the whole population (unnest of column arrays); existing drivers are left as they are.
_INSERT_MISSING_DRIVERS = """
INSERT INTO drivers (driver_id, first_name, last_name, email, timezone, is_active)
SELECT d.driver_id, d.first_name, d.last_name, d.email, d.timezone, true
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
     AS d(driver_id, first_name, last_name, email, timezone)
ON CONFLICT (driver_id) DO NOTHING
"""


@dataclass(frozen=True, slots=True)
class NewDriver:
    driver_id: str
    first_name: str
    last_name: str
    email: str
    timezone: str  # IANA name: night exposure is computed in it


async def drivers_table_exists(conn: asyncpg.Connection) -> bool:
    return bool(await conn.fetchval("SELECT to_regclass('drivers') IS NOT NULL"))


async def insert_missing_drivers(conn: asyncpg.Connection, drivers: Sequence[NewDriver]) -> int:
    """Insert the drivers not yet present (one statement); returns how many were new."""
    status = await conn.execute(
        _INSERT_MISSING_DRIVERS,
        [d.driver_id for d in drivers],
        [d.first_name for d in drivers],
        [d.last_name for d in drivers],
        [d.email for d in drivers],
        [d.timezone for d in drivers],
    )
    return int(status.split()[-1])
