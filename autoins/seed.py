"""`autoins seed --drivers N`: demo data for development — drivers, an active policy each, logins.

Drivers are the simulator's (`driver0001` …, same names and time zones as `autoins simulate` with the same
seed), logins `driver0001` / `password0001` … with role driver, and `admin` / `admin-password`.
Idempotent: existing drivers, policies (by number) and users (by name) are left as they are, and only
missing users' passwords are hashed. Each hash has its own salt; hashing runs on a thread pool
(argon2-cffi releases the GIL), so N = 200 takes seconds. Refused outside the development environment.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated

import typer

from autoins.cli_support import console, run, settings_from_env, user_errors
from autoins.errors import UserFacingError
from autoins.simulate import register_drivers
from config.settings import Environment, Settings
from deployments.api.auth import hash_password_sync
from domain.pricing import DEFAULT_RULES
from domain.simulator import Population
from domain.simulator.profiles import vehicle_use
from storage.postgres import admin_queries, users
from storage.postgres.pool import connect

ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "admin-password"  # development only: seeding refuses any other environment
MAX_DRIVERS = 9_999  # driver0001 … driver9999


@dataclass(frozen=True, slots=True)
class SeedResult:
    drivers: int
    new_drivers: int
    new_policies: int
    new_users: int


def demo_password(driver_id: str) -> str:
    """`driver0001` → `password0001` (the plan's load test logs in this way)."""
    return "password" + driver_id.removeprefix("driver")


def policy_number(driver_id: str) -> str:
    return f"POL-{driver_id}"


async def seed_demo(
    settings: Settings, drivers: int, *, seed: int = 7, on_progress: Callable[[int, int], None] | None = None
) -> SeedResult:
    """Create what is missing; `on_progress(done, total)` after each hashed password."""
    if settings.environment is not Environment.DEVELOPMENT:
        raise UserFacingError(
            f"autoins seed creates well-known demo passwords and runs only in development "
            f"(ENVIRONMENT is {settings.environment.value})"
        )
    if not 1 <= drivers <= MAX_DRIVERS:
        raise UserFacingError(f"--drivers must be within 1..{MAX_DRIVERS}, got {drivers}")
    population = Population.generate(drivers, seed)
    truth = population.truth_table()
    uses = {p.driver_id: vehicle_use(p) for p in population.profiles}
    new_drivers = await register_drivers(settings, truth)  # clear messages for a missing DB/schema
    driver_ids = [t.driver_id for t in truth]
    conn = await connect(settings, application_name="autoins-seed")
    try:
        today = datetime.now(UTC).date()
        policies = [demo_policy(d, today, uses[d]) for d in driver_ids]
        new_policies = await admin_queries.insert_missing_policies(conn, policies)
        wanted = [ADMIN_USERNAME, *driver_ids]
        missing = [u for u in wanted if u not in await users.existing_usernames(conn, wanted)]
        hashes = await _hash_all([_password(u) for u in missing], on_progress)
        rows = [(u, h, "admin" if u == ADMIN_USERNAME else "driver", None if u == ADMIN_USERNAME else u)
                for u, h in zip(missing, hashes, strict=True)]
        new_users = await users.insert_missing_users(conn, rows) if rows else 0
    finally:
        await conn.close()
    return SeedResult(drivers=drivers, new_drivers=new_drivers, new_policies=new_policies, new_users=new_users)


def _password(username: str) -> str:
    return ADMIN_PASSWORD if username == ADMIN_USERNAME else demo_password(username)


def demo_policy(driver_id: str, today: date, use: str = "personal") -> tuple:
    """An active one-year policy at the default rules' base premium (the row insert_missing_policies takes)."""
    base = DEFAULT_RULES.base_annual_premium
    return (driver_id, policy_number(driver_id), base, DEFAULT_RULES.per_km_rate, DEFAULT_RULES.currency, today,
            today + timedelta(days=365), use)


async def _hash_all(passwords: list[str], on_progress: Callable[[int, int], None] | None) -> list[str]:
    if not passwords:
        return []
    loop = asyncio.get_running_loop()
    done = 0

    def hashed(future: asyncio.Future) -> None:
        nonlocal done
        done += 1
        if on_progress is not None:
            on_progress(done, len(passwords))

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="seed-hash") as pool:
        futures = [loop.run_in_executor(pool, hash_password_sync, p) for p in passwords]
        for future in futures:
            future.add_done_callback(hashed)
        return list(await asyncio.gather(*futures))


@user_errors
def seed_command(
    drivers: Annotated[int, typer.Option("--drivers", min=1, max=MAX_DRIVERS, help="Demo drivers to create.")] = 20,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Population seed (match `autoins simulate`).")] = 7,
) -> None:
    """Development only: demo drivers with an active policy and a login each, plus an admin login."""
    settings = settings_from_env()
    step = max(drivers // 10, 1)

    def progress(done: int, total: int) -> None:
        if done == total or done % step == 0:
            console.print(f"  hashed {done}/{total} passwords")

    result = run(seed_demo(settings, drivers, seed=seed, on_progress=progress))
    console.print(
        f"seeded {result.drivers} drivers: {result.new_drivers} new drivers, {result.new_policies} new policies, "
        f"{result.new_users} new logins"
    )
    console.print(f"log in as driver0001 / {demo_password('driver0001')} … or {ADMIN_USERNAME} / {ADMIN_PASSWORD}")
