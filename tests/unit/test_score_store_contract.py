"""The ScoreStore contract (tests/contracts/score_store_contract.py) against the InMemoryScoreStore fake."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from decimal import Decimal

import pytest

from domain.batches import NewEvent
from domain.trip_summary import TripSummary
from storage.memory.score_store import InMemoryScoreStore, PolicyRow
from tests.contracts.score_store_contract import *  # noqa: F403 (the contract's test functions)
from tests.contracts.score_store_contract import History


class MemoryBackend:
    def __init__(self) -> None:
        self.store = InMemoryScoreStore()

    async def add_trips(self, trips: Sequence[TripSummary], seqs: Mapping[uuid.UUID, int] | None = None) -> None:
        self.store.add_trips(trips)
        self.store.seqs.update(seqs or {})

    async def add_policy(
        self,
        policy_id: uuid.UUID,
        driver_id: str,
        premium: Decimal,
        *,
        status: str = "active",
        effective_date: dt.date = dt.date(2026, 1, 1),
        policy_number: str | None = None,
    ) -> None:
        number = policy_number or f"P-{policy_id}"
        self.store.add_policy(
            PolicyRow(
                policy_id,
                driver_id,
                premium,
                premium,
                status=status,
                effective_date=effective_date,
                policy_number=number,
            )
        )

    async def set_premium(self, policy_id: uuid.UUID, premium: Decimal) -> None:
        held = self.store.policies[policy_id]
        self.store.policies[policy_id] = PolicyRow(
            held.policy_id, held.driver_id, premium, held.base_premium, status=held.status,
            effective_date=held.effective_date, policy_number=held.policy_number,
        )  # fmt: skip

    async def append_foreign(self, event: NewEvent) -> None:
        self.store.events.append([event])

    async def history(self) -> History:
        scores = sorted(
            (
                s.score_id,
                s.driver_id,
                s.scored_at_ms,
                s.score,
                s.band,
                s.model_version,
                s.feature_hash,
                s.credibility,
                s.trip_id,
            )
            for s in self.store.scores.values()
        )
        events = sorted(
            (e.stream_id, e.stream_version, e.event_id, e.event_type, e.payload_json)
            for stream, log in self.store.events.streams.items()
            if stream.startswith("risk:")
            for e in log
        )
        policies = {p.policy_id: (p.current_premium, p.last_score, p.last_band) for p in self.store.policies.values()}
        return History(scores, events, policies)


@pytest.fixture
def new_backend():
    async def make() -> MemoryBackend:
        return MemoryBackend()

    return make
