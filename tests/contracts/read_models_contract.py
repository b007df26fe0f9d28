"""The DriverReadModels contract (usecases.ports.read_models): run on InMemoryDriverReadModels in the unit suite
and on PostgresDriverReadModels in the integration suite. A `World` arranges rows in the backend; each check
uses fresh driver ids, so one database serves every check."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Protocol

from domain.events import PremiumQuoted
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
]
