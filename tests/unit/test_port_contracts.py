"""The ports' contract suites (tests/contracts/) on the in-memory fakes; the integration suite runs the same
checks on PostgreSQL and Redis (tests/integration/test_api_port_contracts.py)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

import pytest

from domain.events import PremiumQuoted
from storage.memory.admin_store import InMemoryAdminStore
from storage.memory.cache import InMemoryResponseCache
from storage.memory.device_store import InMemoryDeviceStore
from storage.memory.login_throttle import InMemoryLoginThrottle
from storage.memory.read_models import InMemoryDriverReadModels
from tests.contracts import admin_store_contract as admin_store
from tests.contracts import cache_contract as cache
from tests.contracts import device_store_contract as device_store
from tests.contracts import login_throttle_contract as login_throttle
from tests.contracts import read_models_contract as read_models


class MemoryWorld:
    def __init__(self) -> None:
        self.models = InMemoryDriverReadModels()

    async def given_driver(self, driver_id: str) -> None:
        self.models.add_driver(driver_row(driver_id))

    async def given_trip(self, driver_id: str, start: datetime, end: datetime, distance_m: float) -> uuid.UUID:
        trip_id = uuid.uuid4()
        self.models.add_trip(trip_row(trip_id, driver_id, start, end, distance_m))
        return trip_id

    async def given_score(self, driver_id: str, scored_at: datetime, score: float, trip_id: uuid.UUID | None,
                          model_version: str) -> None:
        self.models.add_score(score_row(driver_id, scored_at, score, trip_id, model_version))

    async def given_policy(self, driver_id: str, number: str, status: str, effective: date,
                           base_premium: Decimal) -> uuid.UUID:
        policy_id = uuid.uuid4()
        self.models.add_policy(policy_row(policy_id, driver_id, number, status, effective, base_premium))
        return policy_id

    async def given_quote(self, event: PremiumQuoted, stream_version: int) -> None:
        self.models.add_quote(event)

    async def given_event(self, stream_version: int, payload_json: str) -> None:
        self.models.add_event(stream_version, payload_json)

    async def given_reading(self, driver_id: str, ts: datetime, lat: float, lon: float,
                            event_id: uuid.UUID | None = None) -> None:
        self.models.add_reading(driver_id, ts, lat, lon, event_id)


def driver_row(driver_id: str) -> dict:
    now = read_models.T0
    return {"driver_id": driver_id, "first_name": "Ada", "last_name": "L", "email": f"{driver_id}@example.com",
            "phone": None, "license_number": None, "date_of_birth": None, "timezone": "UTC", "is_active": True,
            "created_at": now, "updated_at": now}


def trip_row(trip_id: uuid.UUID, driver_id: str, start: datetime, end: datetime, distance_m: float) -> dict:
    return {"trip_id": trip_id, "driver_id": driver_id, "start_time": start, "end_time": end,
            "distance_m": distance_m, "duration_s": (end - start).total_seconds(), "avg_speed_kmh": 20.0,
            "max_speed_kmh": 80.0, "harsh_braking_count": 0, "harsh_acceleration_count": 0,
            "harsh_cornering_count": 0, "speeding_moderate_s": 0.0, "speeding_severe_s": 0.0, "night_s": 0.0,
            "phone_use_moving_s": 0.0, "idle_s": 0.0, "crash_count": 0, "end_reason": "ignition_off"}


def score_row(driver_id: str, scored_at: datetime, score: float, trip_id: uuid.UUID | None, model: str) -> dict:
    return {"score_id": uuid.uuid4(), "driver_id": driver_id, "scored_at": scored_at, "score": Decimal(str(score)),
            "band": "C", "model_version": model, "feature_hash": "f", "credibility": 0.5,
            "explanation": {"top_factors": [["night_share", 0.1]]}, "trip_id": trip_id}


def policy_row(policy_id: uuid.UUID, driver_id: str, number: str, status: str, effective: date,
               base_premium: Decimal) -> dict:
    now = read_models.T0
    return {"policy_id": policy_id, "driver_id": driver_id, "policy_number": number, "status": status,
            "base_premium": base_premium, "current_premium": base_premium, "per_km_rate": Decimal("0.0100"),
            "currency": "USD", "effective_date": effective, "expiration_date": date(effective.year + 1, 1, 1),
            "last_score": None, "last_band": None, "created_at": now, "updated_at": now}


@pytest.mark.parametrize("check", cache.CONTRACT, ids=lambda c: c.__name__)
async def test_the_in_memory_cache_keeps_the_cache_contract(check):
    await check(InMemoryResponseCache())


@pytest.mark.parametrize("check", read_models.CONTRACT, ids=lambda c: c.__name__)
async def test_the_in_memory_read_models_keep_the_read_model_contract(check):
    await check(MemoryWorld())


@pytest.mark.parametrize("check", admin_store.CONTRACT, ids=lambda c: c.__name__)
async def test_the_in_memory_admin_store_keeps_the_admin_store_contract(check):
    await check(InMemoryAdminStore())


@pytest.mark.parametrize("check", login_throttle.CONTRACT, ids=lambda c: c.__name__)
async def test_the_in_memory_login_throttle_keeps_the_throttle_contract(check):
    await check(InMemoryLoginThrottle(login_throttle.RULES))


@pytest.mark.parametrize("check", device_store.CONTRACT, ids=lambda c: c.__name__)
async def test_the_in_memory_device_store_keeps_the_device_store_contract(check):
    await check(InMemoryDeviceStore(drivers={"d-devices"}), "d-devices")
