"""The DisputeStore contract (tests/contracts/dispute_store_contract.py) against the InMemoryDisputeStore fake."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from domain.events import DomainEvent
from domain.scoring import PolicyTerms
from domain.trip_summary import TripSummary
from storage.memory.dispute_store import InMemoryDisputeStore
from tests.contracts.dispute_store_contract import *  # noqa: F403 (the contract's test functions)


class MemoryBackend:
    def __init__(self) -> None:
        self.store = InMemoryDisputeStore()

    async def add_trip(self, summary: TripSummary, episodes: list[DomainEvent]) -> None:
        self.store.add_trip(summary, episodes)

    async def add_policy(self, driver_id: str, premium: Decimal) -> PolicyTerms:
        policy = PolicyTerms(policy_id=uuid.uuid4(), base_premium=Decimal("600.00"), current_premium=premium,
                             per_km_rate=Decimal("0.0200"), currency="EUR")
        self.store.add_policy(driver_id, policy)
        return policy

    async def add_score(self, driver_id: str, scored_at_ms: int) -> None:
        self.store.add_score(driver_id, scored_at_ms)

    async def trip(self, trip_id: uuid.UUID) -> TripSummary:
        return self.store.trips[trip_id]

    async def premium(self, driver_id: str) -> Decimal:
        return self.store.policies[driver_id].current_premium


@pytest.fixture
def new_backend():
    async def make() -> MemoryBackend:
        return MemoryBackend()

    return make
