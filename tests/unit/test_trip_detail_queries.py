"""A trip's episodes and route through the driver queries over the fakes: content, who may read them, paging, the
route's cache, and the bounds (points out, readings in)."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest

from domain.route_simplify import RouteRules
from storage.memory.cache import InMemoryResponseCache
from storage.memory.read_models import InMemoryDriverReadModels
from storage.memory.risk_model import FakeRiskModel
from tests.contracts.read_models_contract import (
    T0,
    braking,
    crash,
    phone_use,
    speeding,
    stored,
    trip_ended,
    trip_started,
)
from tests.unit.test_port_contracts import driver_row, trip_row
from usecases.driver_queries import DriverQueries, QueryTerms

OWNER, OTHER = "driver0001", "driver0002"
START, END = T0, T0 + timedelta(minutes=30)


def _owner_only(driver_id: str) -> bool:
    return driver_id == OWNER


def _other_only(driver_id: str) -> bool:
    return driver_id == OTHER


def _anyone(_driver_id: str) -> bool:
    return True


def _world() -> tuple[InMemoryDriverReadModels, uuid.UUID]:
    models = InMemoryDriverReadModels()
    for driver in (OWNER, OTHER):
        models.add_driver(driver_row(driver))
    trip_id = uuid.uuid4()
    models.add_trip(trip_row(trip_id, OWNER, START, END, 12_000.0))
    return models, trip_id


def _queries(models: InMemoryDriverReadModels, route: RouteRules | None = None,
             cache: InMemoryResponseCache | None = None) -> DriverQueries:
    terms = QueryTerms(ttl_default_s=60, ttl_score_s=30, window_days=90.0, route=route or RouteRules())
    return DriverQueries(models, cache or InMemoryResponseCache(), FakeRiskModel(), terms)


def _stream(models: InMemoryDriverReadModels, trip_id: uuid.UUID) -> None:
    at = [START + timedelta(minutes=m) for m in (10, 5, 12, 20)]
    events = [trip_started(OWNER, trip_id, START), speeding(OWNER, trip_id, at[0]), braking(OWNER, trip_id, at[1]),
              phone_use(OWNER, trip_id, at[2]), crash(OWNER, trip_id, at[3]), trip_ended(OWNER, trip_id, START, END)]
    for version, event in enumerate(events, start=1):
        models.add_event(version, stored(event, grade="medium") if version == 3 else stored(event))
    models.add_reading(OWNER, at[0], 45.2, 7.2)


async def test_a_trips_episodes_come_by_start_with_grade_peak_unit_position_and_limit():
    models, trip_id = _world()
    _stream(models, trip_id)
    page = json.loads(await _queries(models).trip_episodes(trip_id, 1, 20, _owner_only))
    assert (page["total"], page["page"], page["page_size"]) == (4, 1, 20)
    rows = [(e["type"], e["grade"], e["peak_value"], e["peak_unit"], e["lat"], e["lon"], e["speed_limit_kmh"])
            for e in page["items"]]
    assert rows == [("harsh_braking", "medium", 4.5, "m/s²", 45.1, 7.1, None),
                    ("speeding", None, 68.0, "km/h", 45.2, 7.2, 50.0),
                    ("phone_use", None, None, None, None, None, None),
                    ("crash", None, 3.0, "g", 45.5, 7.5, None)]
    first = page["items"][0]
    assert (first["start_time"], first["end_time"]) == ("2026-11-20T12:05:00Z", "2026-11-20T12:05:02Z")


async def test_episodes_come_in_pages_with_the_total():
    models, trip_id = _world()
    _stream(models, trip_id)
    second = json.loads(await _queries(models).trip_episodes(trip_id, 2, 3, _anyone))
    assert second["total"] == 4 and [e["type"] for e in second["items"]] == ["crash"]


async def test_an_unknown_trip_and_another_drivers_trip_are_the_same_none():
    models, trip_id = _world()
    _stream(models, trip_id)
    models.add_reading(OWNER, START, 45.0, 7.0)
    cache = InMemoryResponseCache()
    queries = _queries(models, cache=cache)
    for may_read in (_owner_only, _other_only):
        assert await queries.trip_episodes(uuid.uuid4(), 1, 20, may_read) is None
        assert await queries.trip_route(uuid.uuid4(), may_read) is None
    assert await queries.trip_episodes(trip_id, 1, 20, _other_only) is None
    assert await queries.trip_route(trip_id, _other_only) is None
    assert cache.loads == 0  # refused before anything was loaded


async def test_the_route_is_a_geojson_line_of_the_trips_readings_without_unknown_positions():
    models, trip_id = _world()
    for s, (lat, lon) in enumerate([(45.0, 7.0), (None, None), (45.001, 7.0), (45.002, 7.0), (45.002, 7.001)]):
        models.add_reading(OWNER, START + timedelta(seconds=s), lat, lon)
    models.add_reading(OWNER, END + timedelta(seconds=1), 50.0, 9.0)  # after the trip
    models.add_reading(OTHER, START, 40.0, 9.0)  # another driver
    route = json.loads(await _queries(models).trip_route(trip_id, _owner_only))
    assert route["type"] == "Feature"
    assert route["geometry"] == {"type": "LineString", "coordinates": [[7.0, 45.0], [7.0, 45.002], [7.001, 45.002]]}
    props = route["properties"]
    assert (props["trip_id"], props["driver_id"]) == (str(trip_id), OWNER)
    assert (props["points_in"], props["points_out"], props["points_skipped"], props["tolerance_m"]) == (4, 3, 1, 5.0)
    assert (props["max_points"], props["truncated"]) == (500, False)


async def test_the_route_is_cached_under_its_driver_until_they_change():
    models, trip_id = _world()
    models.add_reading(OWNER, START, 45.0, 7.0)
    models.add_reading(OWNER, END, 45.01, 7.0)
    cache = InMemoryResponseCache()
    queries = _queries(models, cache=cache)
    first = await queries.trip_route(trip_id, _owner_only)
    models.add_reading(OWNER, START + timedelta(minutes=15), 45.005, 7.01)
    assert await queries.trip_route(trip_id, _anyone) == first and cache.loads == 1
    await cache.invalidate([OWNER])
    assert json.loads(await queries.trip_route(trip_id, _owner_only))["properties"]["points_in"] == 3


@pytest.mark.parametrize(("readings", "points_out", "geometry"), [(0, 0, False), (1, 1, False), (2, 2, True)])
async def test_a_route_of_fewer_than_two_positions_has_no_geometry(readings, points_out, geometry):
    models, trip_id = _world()
    for s in range(readings):
        models.add_reading(OWNER, START + timedelta(seconds=s), 45.0 + s / 1000, 7.0)
    route = json.loads(await _queries(models).trip_route(trip_id, _owner_only))
    assert route["properties"]["points_out"] == points_out and (route["geometry"] is not None) == geometry


async def test_a_route_keeps_its_point_budget_and_says_when_readings_were_cut():
    models, trip_id = _world()
    for s in range(60):  # a zigzag: every point is a corner
        models.add_reading(OWNER, START + timedelta(seconds=s), 45.0 + s / 1000, 7.0 + (s % 2) / 100)
    route = json.loads(await _queries(models, RouteRules(max_points=10, max_readings=50)).trip_route(
        trip_id, _owner_only))
    props = route["properties"]
    assert (props["points_in"], props["truncated"], props["max_points"]) == (50, True, 10)
    assert len(route["geometry"]["coordinates"]) == props["points_out"] <= 10 and props["tolerance_m"] > 5.0
