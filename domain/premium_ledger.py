"""The premium ledger as a fold over a driver's risk stream: every premium decision with its cause. Pure.

An entry per `premium_quoted` (cause `trip`, or `model_version` when the model differs from the previous entry's)
and per `dispute_rescored` with a premium (cause `dispute`). `renewal` is reserved for the policy renewals the
system does not make yet. The store writes entries in the transaction that appends their events, computed by
`fold_ledger` from the stream head's state; rebuilding from the whole stream gives the same entries (tested).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from decimal import Decimal
from typing import Literal

import msgspec

from domain.events import DisputeRescored, DomainEventBase, PremiumQuoted, RiskScored

Cause = Literal["trip", "dispute", "model_version", "renewal"]


class LedgerEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One premium decision. `entry_id` is its event's id, `stream_version` its place in `risk:{driver_id}`;
    `occurred_at_ms` the trip's end (device time) or the dispute decision's time. Money in `currency`."""

    entry_id: uuid.UUID
    driver_id: str
    stream_version: int
    policy_id: uuid.UUID
    occurred_at_ms: int
    cause: Cause
    trip_id: uuid.UUID | None
    dispute_id: uuid.UUID | None
    model_version: str
    feature_hash: str
    rules_version: str
    score: float
    band: str
    previous_premium: Decimal | None
    premium: Decimal
    currency: str
    cap_applied: bool
    clamp_applied: bool


class LedgerState(msgspec.Struct, frozen=True, kw_only=True):
    """What the fold carries between events: the last entry's model version and the last score's feature hash
    by (trip id, model version), which a `premium_quoted` does not repeat."""

    last_model_version: str | None = None
    last_scored: tuple[uuid.UUID | None, str, str] | None = None  # (trip_id, model_version, feature_hash)


def fold_ledger(state: LedgerState, events: Iterable[tuple[int, DomainEventBase]]
                ) -> tuple[LedgerState, list[LedgerEntry]]:
    """Entries of `events` ((stream version, event) of one risk stream, in version order) after `state`.
    Deterministic: the same events and state give the same entries."""
    entries: list[LedgerEntry] = []
    for version, event in events:
        if isinstance(event, RiskScored):
            state = msgspec.structs.replace(
                state, last_scored=(event.trip_id, event.model_version, event.feature_hash))
        elif isinstance(event, PremiumQuoted):
            held = state.last_scored
            fhash = held[2] if held is not None and held[:2] == (event.trip_id, event.model_version) else ""
            changed = state.last_model_version is not None and state.last_model_version != event.model_version
            entries.append(LedgerEntry(
                entry_id=event.event_id, driver_id=event.driver_id, stream_version=version,
                policy_id=event.policy_id, occurred_at_ms=event.occurred_at_ms,
                cause="model_version" if changed else "trip", trip_id=event.trip_id, dispute_id=None,
                model_version=event.model_version, feature_hash=fhash, rules_version=event.rules_version,
                score=event.score, band=event.band, previous_premium=event.previous_premium, premium=event.premium,
                currency=event.currency, cap_applied=event.cap_applied, clamp_applied=event.clamp_applied))
            state = msgspec.structs.replace(state, last_model_version=event.model_version)
        elif isinstance(event, DisputeRescored) and event.policy_id is not None and event.premium is not None:
            entries.append(LedgerEntry(
                entry_id=event.event_id, driver_id=event.driver_id, stream_version=version,
                policy_id=event.policy_id, occurred_at_ms=event.occurred_at_ms, cause="dispute",
                trip_id=event.trip_id, dispute_id=event.dispute_id, model_version=event.model_version,
                feature_hash=event.feature_hash, rules_version=event.rules_version, score=event.score,
                band=event.band, previous_premium=event.previous_premium, premium=event.premium,
                currency=event.currency or "", cap_applied=event.cap_applied, clamp_applied=event.clamp_applied))
            state = msgspec.structs.replace(state, last_model_version=event.model_version)
    return state, entries


def ledger_of(events: Iterable[tuple[int, DomainEventBase]]) -> list[LedgerEntry]:
    """The whole ledger of one risk stream, from its first event."""
    return fold_ledger(LedgerState(), events)[1]
