"""ScoreStore and ScorePublisher: what a scoring round reads, writes and projects (docs/SCORING.md).

"Scored" means: a `risk_scores` row carries the trip's id (any model version). A driver's scored trips are a
prefix of its trips in `domain.scoring.trip_order`, because a round only ever scores a driver's oldest unscored
trips. Real adapters: storage/postgres/score_store.py, storage/redis/score_projection.py; fakes:
storage/memory/score_store.py. Contract: tests/contracts/score_store_contract.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from domain.scoring import EndedTrip, PolicyTerms, ScoringOutcome
from domain.trip_summary import TripSummary


class StalePolicy(Exception):
    """A policy changed between loading and writing (admin edit): nothing was written; reload and recompute."""


@dataclass(frozen=True, slots=True)
class TripSpan:
    """One driver's trips that ended in (from_ms, to_ms], device time: the union of the scoring windows of
    the trips a round scores for that driver."""

    driver_id: str
    from_ms: int
    to_ms: int


@dataclass(frozen=True, slots=True)
class ScoringInputs:
    """Per driver: the trips of its span (start order, then trip id) and its active policy, if any."""

    trips: dict[str, list[TripSummary]]
    policies: dict[str, PolicyTerms]


@dataclass(frozen=True, slots=True)
class StoredRiskEvent:
    """A risk event as stored: its stream version and canonical JSON (encode_event bytes)."""

    event_id: uuid.UUID
    event_type: str
    stream_version: int
    occurred_at_ms: int
    payload_json: bytes


@dataclass(frozen=True, slots=True)
class ScoreWriteResult:
    """Counts of one `write_scores`, and every outcome's events as stored (fresh or from an earlier run)."""

    scores_inserted: int
    events_inserted: int
    policies_updated: int
    stored: dict[uuid.UUID, StoredRiskEvent]


@dataclass(frozen=True, slots=True)
class ScoredTrip:
    """One scored trip as projected: the trip (its `seq` orders the live messages) and its stored events."""

    trip: EndedTrip
    events: tuple[StoredRiskEvent, ...]


class ScoreStore(Protocol):
    async def unscored_trips(self, driver_ids: Sequence[str], limit_per_driver: int) -> dict[str, list[EndedTrip]]:
        """Each driver's oldest `limit_per_driver` unscored trips in trip order (every asked driver is a key).
        Their `seq` is UNKNOWN_SEQ: `trip_seqs` finds it when the submission that knew it was lost."""
        ...

    async def trip_seqs(self, trips: Sequence[EndedTrip]) -> dict[uuid.UUID, int]:
        """trip id → the offset of the trip's last stored reading (UNKNOWN_SEQ when it has none)."""
        ...

    async def load_inputs(self, spans: Sequence[TripSpan]) -> ScoringInputs:
        """The trips of every span and each span driver's active policy (storage.postgres.policies' rule)."""
        ...

    async def write_scores(self, outcomes: Sequence[ScoringOutcome]) -> ScoreWriteResult:
        """Store a round atomically: score rows, risk events appended to `risk:{driver}` through the event
        store's append, each priced policy moved to its last quote. Several outcomes per driver, in trip order.
        Outcomes already stored (by `risk_scored` id) are skipped whole and come back as stored. Raises
        StalePolicy (nothing written) when a policy is no longer active at its first quote's previous premium."""
        ...

    async def oldest_unscored_trips(self, limit: int) -> list[EndedTrip]:
        """Catch-up: up to `limit` unscored trips of any driver, oldest first (trip order), any age;
        `seq` UNKNOWN_SEQ."""
        ...


class ScorePublisher(Protocol):
    async def publish(self, scored: Sequence[ScoredTrip]) -> None:
        """Project committed scores (live messages, cache invalidation); repeating it is harmless."""
        ...
