"""A trip's episodes and route through the whole API (in-process, real PostgreSQL and Redis): what they answer, who
may read them (a driver never another driver's trip: the same 404 as an unknown trip), and the plans of their
statements (the partition key bounds them, an index serves them)."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from deployments.api.schemas import EpisodeOut, Page, TripRouteOut
from domain.ids import trip_event_id
from domain.trip_episodes import EPISODE_TAGS
from storage.postgres.pool import connect
from storage.postgres.trip_detail import TRIP_EPISODES, TRIP_POSITIONS
from tests.integration.inprocess_api import (
    bearer,
    drop_seeded,
    insert_trip_story,
    insert_trips,
    login,
    running_api,
    seeded_database,
)

A, B = "driver0001", "driver0002"
READINGS = 600


@pytest.fixture(scope="module")
async def world(base_settings):
    settings = await seeded_database(base_settings, drivers=2)
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    trips = {}
    for driver in (A, B):
        trips[driver] = (await insert_trips(settings, driver, 1, end))[0]
        await insert_trip_story(settings, driver, trips[driver], end - timedelta(hours=1), end, 4, READINGS)
    try:
        async with running_api(settings) as (_app, client):
            tokens = {name: await login(client, name) for name in (A, B, "admin")}
            yield client, settings, trips, tokens
    finally:
        await drop_seeded(settings)


async def _get(world, who: str, path: str, **params):
    client, _settings, _trips, tokens = world
    return await client.get(path, params=params, headers=bearer(tokens[who]))


async def test_a_driver_reads_their_trips_episodes_by_start_with_grades_and_peaks(world):
    _client, _settings, trips, _tokens = world
    response = await _get(world, A, f"/api/v1/trips/{trips[A]}/events")
    assert response.status_code == 200, response.text
    page = response.json()
    Page[EpisodeOut].model_validate(page)  # the OpenAPI model documents what is sent
    assert (page["total"], page["page"], page["page_size"]) == (4, 1, 20)
    items = page["items"]
    assert [e["type"] for e in items] == ["harsh_braking", "harsh_braking", "speeding", "harsh_braking"]
    assert [e["grade"] for e in items] == ["high", "medium", None, "medium"]  # harsh without a grade: medium
    assert [e["start_time"] for e in items] == sorted(e["start_time"] for e in items)
    assert (items[0]["peak_value"], items[0]["peak_unit"], items[0]["lat"]) == (4.5, "m/s²", 45.1)
    assert (items[2]["peak_value"], items[2]["peak_unit"], items[2]["speed_limit_kmh"]) == (68.0, "km/h", 50.0)
    second = (await _get(world, A, f"/api/v1/trips/{trips[A]}/events", page=2, page_size=3)).json()
    assert [e["event_id"] for e in second["items"]] == [items[3]["event_id"]]


async def test_a_driver_reads_their_trips_route_as_a_simplified_geojson_line(world):
    _client, _settings, trips, _tokens = world
    response = await _get(world, A, f"/api/v1/trips/{trips[A]}/route")
    assert response.status_code == 200, response.text
    route = response.json()
    TripRouteOut.model_validate(route)
    line, props = route["geometry"]["coordinates"], route["properties"]
    assert route["type"] == "Feature" and route["geometry"]["type"] == "LineString"
    assert (props["trip_id"], props["driver_id"], props["points_in"], props["points_skipped"]) == (
        str(trips[A]), A, READINGS, 0)
    assert 2 <= props["points_out"] == len(line) <= props["max_points"] == 500
    assert line[0] == pytest.approx([7.0, 45.0]) and line[-1][1] == pytest.approx(45.0 + (READINGS - 1) * 1e-4)


@pytest.mark.parametrize("part", ["", "/events", "/route"])
async def test_a_driver_cannot_read_another_drivers_trip_and_gets_the_unknown_trips_404(world, part):
    _client, _settings, trips, _tokens = world
    unknown = uuid.uuid4()
    for reader, trip_id in ((B, trips[A]), (A, trips[B])):
        foreign = await _get(world, reader, f"/api/v1/trips/{trip_id}{part}")
        missing = await _get(world, reader, f"/api/v1/trips/{unknown}{part}")
        assert foreign.status_code == missing.status_code == 404
        assert foreign.json()["detail"] == f"trip {trip_id} not found"
        assert missing.json()["detail"] == f"trip {unknown} not found"
    for driver in (A, B):
        assert (await _get(world, "admin", f"/api/v1/trips/{trips[driver]}{part}")).status_code == 200


# Other drivers' data around the trips, so the planner sees tables of some size (on a near-empty table a sequential
# scan is the cheaper plan, and the right one): ~100k readings, 20k events and 5k trips in the trips' month.
BACKGROUND = """
INSERT INTO telematics_events (event_id, ts, driver_id, event_type, lat, lon, speed_kmh, accel_ms2, heading)
SELECT gen_random_uuid(), $1::timestamptz - (g * 7 || ' seconds')::interval, 'bg' || (g % 100), 'position',
       45, 7, 50, 0, 90
FROM generate_series(1, 100000) g;
INSERT INTO domain_events (event_id, stream_id, stream_version, event_type, payload, occurred_at)
SELECT gen_random_uuid(), 'bg' || (g % 100), g, 'harsh_braking_detected', '{}'::jsonb,
       $1::timestamptz - (g * 31 || ' seconds')::interval
FROM generate_series(1, 20000) g;
INSERT INTO trips (trip_id, driver_id, start_time, end_time, distance_m, duration_s, avg_speed_kmh, max_speed_kmh,
                   end_reason)
SELECT gen_random_uuid(), 'bg' || (g % 100), $1::timestamptz - (g * 120 || ' seconds')::interval,
       $1::timestamptz - (g * 120 - 60 || ' seconds')::interval, 1000, 60, 60, 60, 'ignition_off'
FROM generate_series(1, 5000) g;
ANALYZE telematics_events; ANALYZE domain_events; ANALYZE trips
"""


def _plan_nodes(plan: dict) -> list[dict]:
    nodes = [plan]
    for child in plan.get("Plans", []):
        nodes += _plan_nodes(child)
    return nodes


async def _executed(settings, sql: str, *args) -> list[dict]:
    """The plan nodes EXPLAIN ANALYZE ran (run-time pruning leaves the others "never executed"), as the API's
    prepared statement would plan them (asyncpg prepares; the first executions get custom plans). The background
    rows live in a transaction that is rolled back."""
    conn = await connect(settings)
    transaction = conn.transaction()
    await transaction.start()
    try:
        end = datetime.now(UTC) - timedelta(hours=1)
        for statement in BACKGROUND.split(";"):
            await (conn.execute(statement, end) if "$1" in statement else conn.execute(statement))
        plan = await conn.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", *args)
    finally:
        await transaction.rollback()
        await conn.close()
    nodes = _plan_nodes((json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"])
    return [n for n in nodes if n["Actual Loops"] > 0]


INDEXED = ("Index Scan", "Index Only Scan", "Bitmap Heap Scan")  # a bitmap heap scan reads what its index found


def _read_without_an_index(nodes: list[dict]) -> list[str]:
    """Table scans that read rows without an index (a sequential scan that found an empty partition read none)."""
    return [f"{n['Node Type']} on {n['Relation Name']}" for n in nodes if "Relation Name" in n
            and n["Node Type"] not in INDEXED and (n["Actual Rows"] > 0 or n.get("Rows Removed by Filter", 0) > 0)]


def _indexes(nodes: list[dict]) -> set[str]:
    """The indexes used, without their table's or partition's name (`pkey`, `driver_id_ts_idx`…)."""
    return {re.sub(r"^(trips|\w+_y\d{4}m\d{2})_", "", n["Index Name"]) for n in nodes if "Index Name" in n}


async def test_the_route_reads_one_index_range_in_the_trips_months_only(world):
    _client, settings, trips, _tokens = world
    conn = await connect(settings)
    try:
        trip = await conn.fetchrow("SELECT driver_id, start_time, end_time FROM trips WHERE trip_id = $1", trips[A])
    finally:
        await conn.close()
    nodes = await _executed(settings, TRIP_POSITIONS, trip["driver_id"], trip["start_time"], trip["end_time"],
                            100_001)
    months = {f"telematics_events_y{t.year:04d}m{t.month:02d}" for t in (trip["start_time"], trip["end_time"])}
    tables = {n["Relation Name"] for n in nodes if "Relation Name" in n}
    assert tables and tables <= months, tables
    assert not _read_without_an_index(nodes)
    assert _indexes(nodes) == {"driver_id_ts_idx"}


async def test_the_episodes_find_the_trips_ends_by_key_and_its_events_by_stream_range(world):
    _client, settings, trips, _tokens = world
    nodes = await _executed(settings, TRIP_EPISODES, trips[A], trip_event_id("trip_started", trips[A]),
                            trip_event_id("trip_ended", trips[A]), list(EPISODE_TAGS), 20, 0)
    assert not _read_without_an_index(nodes), _read_without_an_index(nodes)
    assert _indexes(nodes) == {"pkey", "stream_id_stream_version_idx", "driver_id_ts_idx"}, _indexes(nodes)
    assert "Seq Scan" not in {n["Node Type"] for n in nodes if n.get("Relation Name") == "trips"}
