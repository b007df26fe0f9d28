"""Cache warming at replica start (plan §2.2): the profile, first trips page and score of recently active
drivers go into L1 (and L2) within `settings.cache_warm_budget_s`, in the background — readiness never
waits for it, and whatever is not warm by the deadline is simply loaded on first request."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime, timedelta

from config.logging import get_logger
from usecases.driver_queries import DriverQueries
from usecases.ports.read_models import DriverReadModels
from usecases.ports.risk_model import RiskModelUnavailable

_log = get_logger("deployments.api.warming")

WARM_MAX_DRIVERS = 500
WARM_LOOKBACK = timedelta(hours=24)
WARM_CONCURRENCY = 4  # leaves most of the pool to live requests
FIRST_PAGE_SIZE = 20  # the page size the plan's clients ask for


async def warm_driver(queries: DriverQueries, driver_id: str) -> None:
    await queries.profile(driver_id)
    await queries.trips(driver_id, 1, FIRST_PAGE_SIZE)
    with contextlib.suppress(RiskModelUnavailable):  # the prior can wait for the first request
        await queries.score(driver_id)


async def warm_cache(queries: DriverQueries, read_models: DriverReadModels, budget_s: float,
                     now: datetime | None = None) -> int:
    """Warm drivers with a trip in the last 24 h (≤ WARM_MAX_DRIVERS, newest first); returns how many."""
    if budget_s <= 0:
        return 0
    started = time.monotonic()
    warmed = 0
    gate = asyncio.Semaphore(WARM_CONCURRENCY)

    async def one(driver_id: str) -> None:
        nonlocal warmed
        async with gate:
            await warm_driver(queries, driver_id)
            warmed += 1

    try:
        async with asyncio.timeout(budget_s):
            since = (now or datetime.now(UTC)) - WARM_LOOKBACK
            driver_ids = await read_models.recently_active(since, WARM_MAX_DRIVERS)
            await asyncio.gather(*(one(d) for d in driver_ids))
        _log.info("cache_warmed", drivers=warmed, elapsed_s=round(time.monotonic() - started, 3))
    except TimeoutError:
        _log.info("cache_warm_budget_spent", drivers=warmed, budget_s=budget_s)
    except Exception as error:  # warming is an optimisation: never take the replica down for it
        _log.warning("cache_warm_failed", drivers=warmed, error=repr(error)[:300])
    return warmed
