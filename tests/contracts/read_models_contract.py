"""The DriverReadModels contract (usecases.ports.read_models): run on InMemoryDriverReadModels in the unit suite
and on PostgresDriverReadModels in the integration suite. A `World` arranges rows in the backend; each check
uses fresh driver ids, so one database serves every check."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Protocol

from domain.events import (
    CrashDetected,
    DomainEventBase,
    HarshBrakingDetected,
    PhoneUseDetected,
    PremiumQuoted,
    SpeedingDetected,
    TripEnded,
    TripStarted,
    encode_event,
)
from domain.ids import trip_event_id
from domain.trip_summary import TripSummary
from usecases.ports.read_models import DriverReadModels

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def ms(value: datetime) -> int:
    return round(value.timestamp() * 1000)


class World(Protocol):
    models: DriverReadModels

    async def given_driver(self, driver_id: str) -> None: ...

    async def given_trip(self, driver_id: str, start: datetime, end: datetime, distance_m: float) -> uuid.UUID: ...

    async def given_score(self, driver_id: str, scored_at: datetime, score: float, trip_id: uuid.UUID | None,
                          model_version: str) -> None: ...

    async def given_policy(self, driver_id: str, number: str, status: str, effective: date,
                           base_premium: Decimal) -> uuid.UUID: ...

    async def given_quote(self, event: PremiumQuoted, stream_version: int) -> None: ...

    async def given_event(self, stream_version: int, payload_json: str) -> None:
        """A domain event in its driver's stream (`driver_id` of the payload), stored as this JSON."""
        ...

    async def given_reading(self, driver_id: str, ts: datetime, lat: float, lon: float,
                            event_id: uuid.UUID | None = None) -> None: ...


def _driver() -> str:
    return f"c{uuid.uuid4().hex[:12]}"


async def an_unknown_driver_is_told_apart_from_one_with_nothing_yet(world: World) -> None:
    unknown, known = _driver(), _driver()
    await world.given_driver(known)
    m = world.models
    assert await m.profile(unknown) is None and (await m.profile(known))["driver_id"] == known
    assert (await m.trips_page(unknown, 10, 0)).known is False
    page = await m.trips_page(known, 10, 0)
    assert (page.known, page.total, list(page.rows)) == (True, 0, [])
    assert await m.latest_score(unknown) == (False, None) and await m.latest_score(known) == (True, None)
    assert (await m.policies(unknown))[0] is False and (await m.policies(known)) == (True, [])
    basis = await m.quote_basis(known)
    assert (basis.policy, basis.stored_quote, basis.latest_trip_end_ms) == (None, None, None)


async def trips_come_newest_first_in_pages_with_the_total(world: World) -> None:
    driver = _driver()
    await world.given_driver(driver)
    ids = [await world.given_trip(driver, T0 + timedelta(hours=2 * i), T0 + timedelta(hours=2 * i + 1), 1000.0 * i)
           for i in range(5)]
    first, second = await world.models.trips_page(driver, 2, 0), await world.models.trips_page(driver, 2, 2)
    assert first.total == second.total == 5
    assert [r["trip_id"] for r in [*first.rows, *second.rows]] == ids[::-1][:4]
    assert (await world.models.trip(ids[0]))["driver_id"] == driver
    assert await world.models.trip(uuid.uuid4()) is None


async def the_latest_score_is_the_newest_scored_at(world: World) -> None:
    driver = _driver()
    await world.given_driver(driver)
    for i, score in enumerate([10.0, 30.0, 20.0]):
        await world.given_score(driver, T0 + timedelta(minutes=[0, 2, 1][i]), score, None, "m1")
    known, row = await world.models.latest_score(driver)
    assert known and float(row["score"]) == 30.0
    history = await world.models.score_history(driver, 10, 0)
    assert history.total == 3 and [float(r["score"]) for r in history.rows] == [30.0, 20.0, 10.0]


async def the_active_policy_is_the_newest_effective_then_the_lowest_number(world: World) -> None:
    driver = _driver()
    await world.given_driver(driver)
    await world.given_policy(driver, f"{driver}-A", "cancelled", date(2026, 6, 1), Decimal("900.00"))
    await world.given_policy(driver, f"{driver}-C", "active", date(2026, 1, 1), Decimal("700.00"))
    chosen = await world.given_policy(driver, f"{driver}-B", "active", date(2026, 1, 1), Decimal("800.00"))
    basis = await world.models.quote_basis(driver)
    assert basis.policy is not None and basis.policy.policy_id == chosen
    assert basis.policy.base_premium == Decimal("800.00")
    known, rows = await world.models.policies(driver)
    assert known and [r["policy_number"] for r in rows] == [f"{driver}-B", f"{driver}-C", f"{driver}-A"]


async def the_quote_basis_has_the_latest_stored_quote_and_trip_end(world: World) -> None:
    driver = _driver()
    await world.given_driver(driver)
    policy_id = await world.given_policy(driver, f"{driver}-P", "active", date(2026, 1, 1), Decimal("800.00"))
    trips = [await world.given_trip(driver, T0 + timedelta(hours=i), T0 + timedelta(hours=i, minutes=30), 5000.0)
             for i in range(2)]
    for version, trip_id in enumerate(trips):
        await world.given_quote(quote_event(driver, trip_id, policy_id, Decimal(f"81{version}.00")), version)
    basis = await world.models.quote_basis(driver)
    assert basis.stored_quote is not None and basis.stored_quote.trip_id == trips[1]
    assert basis.stored_quote.premium == Decimal("811.00") and basis.stored_quote.policy_id == policy_id
    assert basis.latest_trip_end_ms == ms(T0 + timedelta(hours=1, minutes=30))


async def the_window_holds_trips_that_ended_after_its_start_up_to_its_end(world: World) -> None:
    driver = _driver()
    await world.given_driver(driver)
    ends = [T0 + timedelta(hours=i, minutes=30) for i in range(4)]
    for end in ends:
        await world.given_trip(driver, end - timedelta(minutes=30), end, 2000.0)
    inside = await world.models.window_trips(driver, ms(ends[0]), ms(ends[2]))
    assert [t.end_ms for t in inside] == [ms(ends[1]), ms(ends[2])]
    assert all(t.driver_id == driver and t.distance_m == 2000.0 for t in inside)


async def a_trips_episodes_come_by_start_in_pages_with_the_position_where_they_began(world: World) -> None:
    driver = _driver()
    await world.given_driver(driver)
    start, end = T0, T0 + timedelta(minutes=30)
    trip = await world.given_trip(driver, start, end, 12_000.0)
    at = [start + timedelta(minutes=m) for m in (10, 5, 12, 20)]
    episodes = [speeding(driver, trip, at[0]), braking(driver, trip, at[1]), phone_use(driver, trip, at[2]),
                crash(driver, trip, at[3])]
    later = await world.given_trip(driver, end + timedelta(hours=1), end + timedelta(hours=2), 5_000.0)
    stream = [trip_started(driver, trip, start), *episodes, trip_ended(driver, trip, start, end),
              trip_started(driver, later, end + timedelta(hours=1)), braking(driver, later, end + timedelta(hours=1))]
    for version, event in enumerate(stream, start=1):
        extra = {"grade": "high"} if event is episodes[1] else {}
        await world.given_event(version, stored(event, **extra))
    await world.given_reading(driver, at[0], 45.2, 7.2, uuid.UUID(int=1))
    await world.given_reading(driver, at[0], 46.0, 8.0, uuid.UUID(int=2))  # same instant: the lowest id wins
    await world.given_reading(driver, at[2], 45.3, 7.3)
    first = await world.models.trip_episodes(trip, 2, 0)
    second = await world.models.trip_episodes(trip, 2, 2)
    assert first is not None and second is not None
    assert (first.driver_id, first.total, second.total) == (driver, 4, 4)
    payloads = [json.loads(row.payload_json) for row in [*first.rows, *second.rows]]
    assert [p["type"] for p in payloads] == ["harsh_braking_detected", "speeding_detected", "phone_use_detected",
                                             "crash_detected"]
    assert payloads[0]["grade"] == "high" and payloads[0]["trip_id"] == str(trip)
    positions = [row.start_position for row in [*first.rows, *second.rows]]
    assert positions == [None, (45.2, 7.2), (45.3, 7.3), None]  # braking and crash carry their own


async def an_unknown_trip_has_no_episodes_and_a_trip_without_events_an_empty_page(world: World) -> None:
    driver = _driver()
    await world.given_driver(driver)
    trip = await world.given_trip(driver, T0, T0 + timedelta(minutes=20), 8_000.0)
    assert await world.models.trip_episodes(uuid.uuid4(), 10, 0) is None
    page = await world.models.trip_episodes(trip, 10, 0)
    assert page is not None and (page.driver_id, page.total, list(page.rows)) == (driver, 0, [])


async def a_trips_positions_are_its_drivers_readings_from_start_to_end_by_time(world: World) -> None:
    driver, other = _driver(), _driver()
    await world.given_driver(driver)
    start, end = T0 + timedelta(hours=3), T0 + timedelta(hours=3, minutes=10)
    trip = await world.given_trip(driver, start, end, 4_000.0)
    second = timedelta(seconds=1)
    for ts, lat in [(end, 45.4), (start - second, 1.0), (start + 10 * second, 45.2), (start, 45.1),
                    (end + second, 2.0)]:
        await world.given_reading(driver, ts, lat, 7.0)
    await world.given_reading(driver, start + 10 * second, 45.3, 7.0, uuid.UUID(int=0))  # same instant, lower id
    await world.given_reading(other, start + 5 * second, 3.0, 7.0)
    bounds = await world.models.trip_bounds(trip)
    assert bounds is not None and (bounds.driver_id, bounds.start_time, bounds.end_time) == (driver, start, end)
    assert await world.models.trip_positions(bounds, 10) == [(45.1, 7.0), (45.3, 7.0), (45.2, 7.0), (45.4, 7.0)]
    assert await world.models.trip_positions(bounds, 2) == [(45.1, 7.0), (45.3, 7.0)]
    assert await world.models.trip_bounds(uuid.uuid4()) is None


def stored(event: DomainEventBase, **extra: object) -> str:
    """The event's JSON as the event store holds it, with fields a newer writer may add."""
    return json.dumps({**json.loads(encode_event(event)), **extra})


def trip_started(driver_id: str, trip_id: uuid.UUID, at: datetime) -> TripStarted:
    return TripStarted(event_id=trip_event_id("trip_started", trip_id), driver_id=driver_id, trip_id=trip_id,
                       occurred_at_ms=ms(at), start_reason="ignition_on", lat=45.0, lon=7.0)


def trip_ended(driver_id: str, trip_id: uuid.UUID, start: datetime, end: datetime) -> TripEnded:
    summary = TripSummary(trip_id=trip_id, driver_id=driver_id, start_ms=ms(start), end_ms=ms(end),
                          distance_m=12_000.0, duration_s=(end - start).total_seconds(), avg_speed_kmh=24.0,
                          max_speed_kmh=90.0)
    return TripEnded(event_id=trip_event_id("trip_ended", trip_id), driver_id=driver_id, trip_id=trip_id,
                     occurred_at_ms=ms(end), summary=summary)


def braking(driver_id: str, trip_id: uuid.UUID, at: datetime) -> HarshBrakingDetected:
    return HarshBrakingDetected(event_id=uuid.uuid4(), driver_id=driver_id, trip_id=trip_id, occurred_at_ms=ms(at),
                                peak_mps2=4.5, duration_s=2.0, speed_at_start_kmh=60.0, start_ms=ms(at),
                                end_ms=ms(at) + 2000, lat=45.1, lon=7.1)


def speeding(driver_id: str, trip_id: uuid.UUID, at: datetime) -> SpeedingDetected:
    return SpeedingDetected(event_id=uuid.uuid4(), driver_id=driver_id, trip_id=trip_id, occurred_at_ms=ms(at),
                            band="moderate", duration_s=20.0, max_excess_kmh=18.0, limit_kmh=50.0, start_ms=ms(at),
                            end_ms=ms(at) + 20_000)


def phone_use(driver_id: str, trip_id: uuid.UUID, at: datetime) -> PhoneUseDetected:
    return PhoneUseDetected(event_id=uuid.uuid4(), driver_id=driver_id, trip_id=trip_id, occurred_at_ms=ms(at),
                            duration_s=8.0, start_ms=ms(at), end_ms=ms(at) + 8000)


def crash(driver_id: str, trip_id: uuid.UUID, at: datetime) -> CrashDetected:
    return CrashDetected(event_id=uuid.uuid4(), driver_id=driver_id, trip_id=trip_id, occurred_at_ms=ms(at),
                         peak_g=3.0, trigger="acceleration", lat=45.5, lon=7.5, speed_kmh=40.0)


def quote_event(driver_id: str, trip_id: uuid.UUID, policy_id: uuid.UUID, premium: Decimal) -> PremiumQuoted:
    return PremiumQuoted(event_id=uuid.uuid4(), driver_id=driver_id, trip_id=trip_id, occurred_at_ms=ms(T0),
                         policy_id=policy_id, model_version="m1", score=42.0, band="C",
                         previous_premium=Decimal("800.00"), premium=premium, raw_premium=premium, currency="USD",
                         annual_km=1234.5, cap_applied=False, clamp_applied=False)


CONTRACT = [
    an_unknown_driver_is_told_apart_from_one_with_nothing_yet,
    trips_come_newest_first_in_pages_with_the_total,
    the_latest_score_is_the_newest_scored_at,
    the_active_policy_is_the_newest_effective_then_the_lowest_number,
    the_quote_basis_has_the_latest_stored_quote_and_trip_end,
    the_window_holds_trips_that_ended_after_its_start_up_to_its_end,
    a_trips_episodes_come_by_start_in_pages_with_the_position_where_they_began,
    an_unknown_trip_has_no_episodes_and_a_trip_without_events_an_empty_page,
    a_trips_positions_are_its_drivers_readings_from_start_to_end_by_time,
]
