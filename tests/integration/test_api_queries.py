"""No N+1: every GET is a small constant number of SQL statements, whatever the page size or how much data
the driver has (counted with asyncpg's query logger on every connection the app acquires)."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from tests.integration.inprocess_api import (
    bearer,
    drop_seeded,
    insert_scores,
    insert_trip_story,
    insert_trips,
    login,
    running_api,
    seeded_database,
)

BUSY, QUIET = "driver0001", "driver0002"  # 150 trips and scores vs one of each
# Their newest trip's stored story: episodes and readings (a busy one-hour trip at 1 Hz vs a trip of two readings)
STORIES = {BUSY: (150, 3_600), QUIET: (1, 2)}


class CountingPool:
    """The app's pool, with a query logger attached to each connection while the app holds it."""

    def __init__(self, pool) -> None:
        self._pool = pool
        self.statements: list[str] = []

    def __getattr__(self, name: str):
        return getattr(self._pool, name)

    @asynccontextmanager
    async def _acquire(self, timeout):
        async with self._pool.acquire(timeout=timeout) as conn:
            conn.add_query_logger(self._log)
            try:
                yield conn
            finally:
                conn.remove_query_logger(self._log)

    def acquire(self, *, timeout=None):
        return self._acquire(timeout)

    def _log(self, record) -> None:
        self.statements.append(record.query)


@pytest.fixture(scope="module")
async def api(base_settings):
    settings = await seeded_database(base_settings, drivers=2)
    end = datetime.now(UTC).replace(microsecond=0)
    for driver, count in ((BUSY, 150), (QUIET, 1)):
        newest = (await insert_trips(settings, driver, count, end))[0]
        await insert_trip_story(settings, driver, newest, end - timedelta(hours=1), end, *STORIES[driver])
    await insert_scores(settings, BUSY, [float(i % 100) for i in range(150)])
    await insert_scores(settings, QUIET, [42.0])
    try:
        async with running_api(settings) as (app, client):
            tokens = {"admin": await login(client, "admin")}
            resources = app.state.resources
            counting = CountingPool(resources.pool)
            resources.queries.read_models.pool = counting  # the adapters of the handlers' ports
            resources.admin.store.pool = counting
            resources.pool = counting  # dashboard and analytics
            yield client, resources, counting, tokens
    finally:
        await drop_seeded(settings)


async def _count(api, path: str, params: dict | None = None) -> tuple[int, int]:
    """(statements of a cold request, statements of the same request again: served from the cache). A first
    request warms the connection (asyncpg introspects unfamiliar column types once per connection)."""
    client, resources, counting, tokens = api
    await client.get(path, params=params, headers=bearer(tokens["admin"]))
    await resources.cache.invalidate([BUSY, QUIET])
    counts = []
    for _ in range(2):
        counting.statements.clear()
        response = await client.get(path, params=params, headers=bearer(tokens["admin"]))
        assert response.status_code == 200, response.text
        await asyncio.sleep(0)  # asyncpg calls query loggers with call_soon
        counts.append(len(counting.statements))
    return counts[0], counts[1]


PAGED = [
    ("/api/v1/drivers/{d}/trips", 2),
    ("/api/v1/risk/{d}/history", 2),
]
SINGLE = [
    ("/api/v1/drivers/{d}", 1),
    ("/api/v1/risk/{d}/score", 1),
    ("/api/v1/policies/{d}", 1),
    # latest score; active policy + stored quote + latest trip end; the scoring window's trips (no stored quote)
    ("/api/v1/policies/{d}/quote", 3),
]
ADMIN_PAGED = ["/api/v1/admin/drivers", "/api/v1/admin/policies", "/api/v1/admin/users"]
ADMIN_SINGLE = [
    "/api/v1/admin/dashboard",
    "/api/v1/admin/analytics/risk-distribution",
    "/api/v1/admin/analytics/trips-daily",
]


@pytest.mark.parametrize(("template", "bound"), PAGED)
async def test_a_page_costs_the_same_statements_for_1_or_100_items_and_any_data_volume(api, template, bound):
    counts = {
        (driver, size): await _count(api, template.format(d=driver), {"page": 1, "page_size": size})
        for driver in (BUSY, QUIET)
        for size in (1, 100)
    }
    cold = {key: c[0] for key, c in counts.items()}
    assert set(cold.values()) == {bound}, cold
    assert {c[1] for c in counts.values()} == {0}, f"the repeated request should come from L1: {counts}"


@pytest.mark.parametrize(("template", "bound"), SINGLE)
async def test_a_single_resource_costs_a_constant_number_of_statements(api, template, bound):
    busy, quiet = await _count(api, template.format(d=BUSY)), await _count(api, template.format(d=QUIET))
    assert busy[0] == quiet[0] == bound, (busy, quiet)
    assert busy[1] == quiet[1] == 0


@pytest.mark.parametrize("path", ADMIN_PAGED)
async def test_admin_lists_are_two_statements_for_any_page_size(api, path):
    counts = {size: (await _count(api, path, {"page_size": size}))[0] for size in (1, 100)}
    assert counts == {1: 2, 100: 2}


@pytest.mark.parametrize("path", ADMIN_SINGLE)
async def test_admin_dashboard_and_analytics_are_one_statement(api, path):
    assert (await _count(api, path))[0] == 1


async def test_a_trip_is_one_statement(api):
    client, _resources, counting, tokens = api
    trips = await client.get(f"/api/v1/drivers/{BUSY}/trips", params={"page_size": 1},
                             headers=bearer(tokens["admin"]))
    trip_id = trips.json()["items"][0]["trip_id"]
    counting.statements.clear()
    response = await client.get(f"/api/v1/trips/{trip_id}", headers=bearer(tokens["admin"]))
    await asyncio.sleep(0)
    assert response.status_code == 200 and len(counting.statements) == 1


async def _newest_trip(api, driver: str) -> str:
    client, _resources, _counting, tokens = api
    trips = await client.get(f"/api/v1/drivers/{driver}/trips", params={"page_size": 1},
                             headers=bearer(tokens["admin"]))
    return trips.json()["items"][0]["trip_id"]


async def test_a_trips_episodes_are_one_statement_for_any_page_size_or_number_of_episodes(api):
    client, _resources, counting, tokens = api
    counts, totals = {}, {}
    for driver in (BUSY, QUIET):
        trip_id = await _newest_trip(api, driver)
        for size in (1, 100):
            counting.statements.clear()
            response = await client.get(f"/api/v1/trips/{trip_id}/events", params={"page_size": size},
                                        headers=bearer(tokens["admin"]))
            await asyncio.sleep(0)
            assert response.status_code == 200, response.text
            counts[(driver, size)], totals[driver] = len(counting.statements), response.json()["total"]
    assert set(counts.values()) == {1}, counts
    assert totals == {BUSY: 150, QUIET: 1}


async def test_a_trips_route_is_two_statements_cold_and_one_cached_for_any_number_of_readings(api):
    counts, points = {}, {}
    for driver in (BUSY, QUIET):
        trip_id = await _newest_trip(api, driver)
        counts[driver] = await _count(api, f"/api/v1/trips/{trip_id}/route")
        client, _resources, _counting, tokens = api
        route = (await client.get(f"/api/v1/trips/{trip_id}/route", headers=bearer(tokens["admin"]))).json()
        points[driver] = (route["properties"]["points_in"], route["properties"]["points_out"] <= 500)
    # the trip's owner and span, then its readings; cached under the owner, only the lookup remains
    assert counts == {BUSY: (2, 1), QUIET: (2, 1)}
    assert points == {BUSY: (3_600, True), QUIET: (2, True)}


async def test_a_trip_shows_its_harsh_episodes_per_grade(api):
    client, resources, _counting, tokens = api
    trips = await client.get(f"/api/v1/drivers/{QUIET}/trips", headers=bearer(tokens["admin"]))
    trip_id = trips.json()["items"][0]["trip_id"]
    assert trips.json()["items"][0]["harsh_by_grade"]["braking"] == {"low": 0, "medium": 0, "high": 0}
    async with resources.pool.acquire() as conn:
        await conn.execute(
            "UPDATE trips SET harsh_braking_count = 3, harsh_braking_high_count = 1, harsh_braking_low_count = 4,"
            " harsh_cornering_count = 1, harsh_acceleration_low_count = 2,"
            " quality_flags = '{ignition_off_while_moving}' WHERE trip_id = $1::uuid", trip_id
        )
    response = await client.get(f"/api/v1/trips/{trip_id}", headers=bearer(tokens["admin"]))
    assert response.status_code == 200, response.text
    trip = response.json()
    assert trip["harsh_braking_count"] == 3
    assert trip["quality_flags"] == ["ignition_off_while_moving"]
    assert trip["harsh_by_grade"] == {"braking": {"low": 4, "medium": 2, "high": 1},
                                      "acceleration": {"low": 2, "medium": 0, "high": 0},
                                      "cornering": {"low": 0, "medium": 1, "high": 0}}
    async with resources.pool.acquire() as conn:
        with pytest.raises(asyncpg.CheckViolationError):  # high is part of the harsh count (migration 0008)
            await conn.execute("UPDATE trips SET harsh_braking_high_count = 9 WHERE trip_id = $1::uuid", trip_id)
