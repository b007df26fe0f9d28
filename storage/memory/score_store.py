"""InMemoryScoreStore and RecordingScorePublisher: the scoring ports in plain dicts (STYLE.md habit 6).

Same semantics as storage/postgres/score_store.py — tests/contracts/score_store_contract.py runs against both:
a trip is scored when a score row carries its id; a write is checked whole (stale policies) before anything
changes and applied without yielding, like a transaction; risk events go through `InMemoryEventStore.append`
(the fake event store's compare-and-set), so a stream written by another writer conflicts the same way.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal

from domain.batches import NewEvent
from domain.events import PremiumQuoted, RiskScored, encode_event, event_type
from domain.scoring import UNKNOWN_SEQ, EndedTrip, PolicyTerms, ScoringOutcome, risk_stream_id, trip_order
from domain.trip_summary import TripSummary
from storage.memory.event_store import InMemoryEventStore
from storage.score_store_rules import check_trip_order, first_per_policy, is_stale, last_per_policy
from usecases.ports.score_store import (
    ScoredTrip,
    ScoreWriteResult,
    ScoringInputs,
    StalePolicy,
    StoredRiskEvent,
    TripSpan,
)


@dataclass(frozen=True, slots=True)
class PolicyRow:
    """The `policies` columns scoring reads and writes."""

    policy_id: uuid.UUID
    driver_id: str
    current_premium: Decimal
    base_premium: Decimal = Decimal("600.00")
    per_km_rate: Decimal = Decimal("0.02")
    currency: str = "EUR"
    status: str = "active"
    effective_date: dt.date = dt.date(2026, 1, 1)
    policy_number: str = ""
    last_score: float | None = None
    last_band: str | None = None


@dataclass(frozen=True, slots=True)
class ScoreRow:
    """A `risk_scores` row (without recorded_at)."""

    score_id: uuid.UUID
    driver_id: str
    scored_at_ms: int
    score: float
    band: str
    model_version: str
    feature_hash: str
    credibility: float
    trip_id: uuid.UUID


@dataclass
class InMemoryScoreStore:
    """`trips`, `seqs` (trip id → offset of its last reading) and `policies` play their tables; tests fill them
    directly. `events` is the fake event store the risk streams live in."""

    events: InMemoryEventStore = field(default_factory=InMemoryEventStore)
    trips: dict[uuid.UUID, TripSummary] = field(default_factory=dict)
    seqs: dict[uuid.UUID, int] = field(default_factory=dict)
    policies: dict[uuid.UUID, PolicyRow] = field(default_factory=dict)
    scores: dict[uuid.UUID, ScoreRow] = field(default_factory=dict)

    # -- test setup -----------------------------------------------------------------------------------
    def add_trips(self, trips: Sequence[TripSummary]) -> None:
        for trip in trips:
            self.trips.setdefault(trip.trip_id, trip)

    def add_policy(self, policy: PolicyRow) -> None:
        self.policies[policy.policy_id] = policy

    # -- the port -------------------------------------------------------------------------------------
    async def unscored_trips(self, driver_ids: Sequence[str], limit_per_driver: int) -> dict[str, list[EndedTrip]]:
        out: dict[str, list[EndedTrip]] = {}
        for driver_id in dict.fromkeys(driver_ids):
            mine = [_ended(t) for t in self.trips.values() if t.driver_id == driver_id and self._unscored(t)]
            out[driver_id] = sorted(mine, key=trip_order)[:limit_per_driver]
        return out

    async def trip_seqs(self, trips: Sequence[EndedTrip]) -> dict[uuid.UUID, int]:
        return {t.trip_id: self.seqs.get(t.trip_id, UNKNOWN_SEQ) for t in trips if t.trip_id in self.trips}

    async def load_inputs(self, spans: Sequence[TripSpan]) -> ScoringInputs:
        ids = [s.driver_id for s in spans]
        if len(set(ids)) != len(ids):
            raise ValueError("load_inputs takes one span per driver")
        trips = {
            s.driver_id: sorted(
                (t for t in self.trips.values() if t.driver_id == s.driver_id and s.from_ms < t.end_ms <= s.to_ms),
                key=lambda t: (t.start_ms, t.trip_id),
            )
            for s in spans
        }
        policies = {d: _terms(p) for d in ids if (p := self._active(d)) is not None}
        return ScoringInputs(trips, policies)

    async def write_scores(self, outcomes: Sequence[ScoringOutcome]) -> ScoreWriteResult:
        if not outcomes:
            return ScoreWriteResult(0, 0, 0, {})
        check_trip_order(outcomes)
        # 1. decide everything (may raise) ...
        fresh = [o for o in outcomes if o.risk_scored.event_id not in self.scores]
        quotes = [o.premium_quoted for o in fresh if o.premium_quoted is not None]
        stale = [q.driver_id for q in first_per_policy(quotes) if self._stale(q)]
        if stale:
            raise StalePolicy(f"policies changed while scoring: {', '.join(sorted(stale)[:10])}")
        streams = {risk_stream_id(o.risk_scored.driver_id) for o in fresh}
        heads = {s: len(self.events.streams.get(s, [])) for s in streams}
        stored: dict[uuid.UUID, StoredRiskEvent] = {}
        appends: list[NewEvent] = []
        for outcome in fresh:
            stream = risk_stream_id(outcome.risk_scored.driver_id)
            for event in outcome.events():
                heads[stream] += 1
                row = StoredRiskEvent(
                    event.event_id, event_type(event), heads[stream], event.occurred_at_ms, encode_event(event)
                )
                stored[row.event_id] = row
                appends.append(_new_event(stream, row))
        # 2. ... then change everything, without yielding to the event loop in between
        inserted, _ = self.events.append(appends)
        for outcome in fresh:
            self.scores[outcome.risk_scored.event_id] = _score_row(outcome.risk_scored)
        updated = 0
        for q in last_per_policy(quotes):
            policy = self.policies[q.policy_id]
            newer = any(s.driver_id == q.driver_id and s.scored_at_ms > q.occurred_at_ms for s in self.scores.values())
            if not newer:
                self.policies[q.policy_id] = replace(
                    policy, current_premium=q.premium, last_score=q.score, last_band=q.band
                )
                updated += 1
        fresh_ids = {o.risk_scored.event_id for o in fresh}
        for outcome in outcomes:
            if outcome.risk_scored.event_id in fresh_ids:
                continue
            for event in outcome.events():
                held = self._stored_event(event)
                if held is not None:
                    stored[held.event_id] = held
        return ScoreWriteResult(len(fresh), inserted, updated, stored)

    async def oldest_unscored_trips(self, limit: int) -> list[EndedTrip]:
        return sorted((_ended(t) for t in self.trips.values() if self._unscored(t)), key=trip_order)[:limit]

    # -- reading back (tests) -------------------------------------------------------------------------
    def score_rows(self) -> list[ScoreRow]:
        return sorted(self.scores.values(), key=lambda s: s.score_id)

    # -- helpers --------------------------------------------------------------------------------------
    def _unscored(self, trip: TripSummary) -> bool:
        return not any(s.trip_id == trip.trip_id for s in self.scores.values())

    def _active(self, driver_id: str) -> PolicyRow | None:
        # storage/postgres/policies.py's rule: newest effective_date, then policy_number, then policy_id
        mine = [p for p in self.policies.values() if p.driver_id == driver_id and p.status == "active"]
        mine.sort(key=lambda p: (-p.effective_date.toordinal(), p.policy_number, p.policy_id))
        return mine[0] if mine else None

    def _stale(self, quote: PremiumQuoted) -> bool:
        policy = self.policies.get(quote.policy_id)
        return is_stale(quote, None, None) if policy is None else is_stale(quote, policy.status, policy.current_premium)

    def _stored_event(self, event: RiskScored | PremiumQuoted) -> StoredRiskEvent | None:
        for e in self.events.streams.get(risk_stream_id(event.driver_id), []):
            if e.event_id == event.event_id:
                return StoredRiskEvent(e.event_id, e.event_type, e.stream_version, e.occurred_at_ms, e.payload_json)
        return None


class RecordingScorePublisher:
    """The ScorePublisher port as a list: every publish call's scored trips, in order."""

    def __init__(self) -> None:
        self.calls: list[list[ScoredTrip]] = []

    async def publish(self, scored: Sequence[ScoredTrip]) -> None:
        self.calls.append(list(scored))

    @property
    def trips(self) -> list[ScoredTrip]:
        return [s for call in self.calls for s in call]


def _ended(trip: TripSummary) -> EndedTrip:
    return EndedTrip(trip.driver_id, trip.trip_id, trip.end_ms, UNKNOWN_SEQ)


def _new_event(stream: str, row: StoredRiskEvent) -> NewEvent:
    return NewEvent(
        row.event_id, stream, row.stream_version, row.event_type, row.occurred_at_ms, row.payload_json, UNKNOWN_SEQ
    )


def _terms(policy: PolicyRow) -> PolicyTerms:
    return PolicyTerms(
        policy_id=policy.policy_id,
        base_premium=policy.base_premium,
        current_premium=policy.current_premium,
        per_km_rate=policy.per_km_rate,
        currency=policy.currency,
    )


def _score_row(event: RiskScored) -> ScoreRow:
    return ScoreRow(
        event.event_id, event.driver_id, event.occurred_at_ms, event.score, event.band, event.model_version,
        event.feature_hash, event.credibility, event.trip_id,
    )  # fmt: skip
