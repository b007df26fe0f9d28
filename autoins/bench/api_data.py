"""Trips for the bench's seeded drivers: the simulator's driving folded by the real trip machine."""

from __future__ import annotations

from config.settings import Settings
from domain.risk_model.dataset import simulate_trips
from storage.postgres.event_store import insert_trips
from storage.postgres.pool import connect


async def insert_simulated_trips(settings: Settings, drivers: int, days: int, seed: int = 7) -> int:
    """Simulate drivers 1 … `drivers` for `days` days (the seed `autoins seed` uses, so profiles match)
    and insert their trips; returns how many rows were new."""
    by_driver = simulate_trips(seed, 1, drivers, days)
    trips = [t for driver_trips in by_driver.values() for t in driver_trips]
    conn = await connect(settings, application_name="autoins-bench-api")
    try:
        return await insert_trips(conn, trips)
    finally:
        await conn.close()
