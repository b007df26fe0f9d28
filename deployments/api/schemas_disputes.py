"""Request and response models of disputes and the premium ledger (issue 16 item 2; docs/API.md)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, StringConstraints

from deployments.api.schemas import Model
from domain.disputes import NOTE_MAX_CHARS, REASON_MAX_CHARS
from domain.premium_ledger import LedgerEntry
from usecases.ports.dispute_store import DisputeRecord

Reason = Annotated[str, StringConstraints(min_length=1, max_length=REASON_MAX_CHARS)]
Note = Annotated[str, StringConstraints(min_length=1, max_length=NOTE_MAX_CHARS)]


class DisputeIn(Model):
    """Dispute one episode (an `event_id` of `GET /api/v1/trips/{id}/events`): harsh (medium or high) or speeding."""

    model_config = ConfigDict(extra="forbid")
    episode_id: uuid.UUID
    reason: Reason = Field(description="why the episode is wrong, in words (not blank)")


class DecisionIn(Model):
    model_config = ConfigDict(extra="forbid")
    decision: Literal["accepted", "rejected"]
    note: Note = Field(description="the reason for the decision, shown to the driver (not blank)")


class DisputeOut(Model):
    dispute_id: uuid.UUID
    driver_id: str
    trip_id: uuid.UUID
    episode_id: uuid.UUID
    episode_type: str
    reason: str
    opened_at: datetime
    status: Literal["open", "accepted", "rejected"]
    note: str | None
    decided_at: datetime | None
    adjustment: dict[str, float] = Field(description="what accepting removes from the trip's summary")

    @classmethod
    def of(cls, record: DisputeRecord) -> DisputeOut:
        o = record.opened
        return cls(dispute_id=o.dispute_id, driver_id=o.driver_id, trip_id=o.trip_id, episode_id=o.episode_id,
                   episode_type=o.episode_type, reason=o.reason, opened_at=_time(o.occurred_at_ms),
                   status=record.status, note=record.note,  # type: ignore[arg-type]
                   decided_at=None if record.decided_at_ms is None else _time(record.decided_at_ms),
                   adjustment=dict(o.adjustment))


class LedgerEntryOut(Model):
    """One premium decision: its cause, what it was computed with (model, features, rules) and the guardrails."""

    entry_id: uuid.UUID
    seq: int = Field(description="its place in the driver's risk stream: the ledger's order")
    occurred_at: datetime = Field(description="the trip's end (device time), or the dispute decision's time")
    cause: Literal["trip", "dispute", "model_version", "renewal"]
    policy_id: uuid.UUID
    trip_id: uuid.UUID | None
    dispute_id: uuid.UUID | None
    model_version: str
    feature_hash: str
    rules_version: str
    score: float
    band: str
    previous_premium: Decimal | None
    premium: Decimal
    change: Decimal | None = Field(description="premium − previous_premium")
    currency: str
    cap_applied: bool
    clamp_applied: bool

    @classmethod
    def of(cls, e: LedgerEntry) -> LedgerEntryOut:
        return cls(entry_id=e.entry_id, seq=e.stream_version, occurred_at=_time(e.occurred_at_ms), cause=e.cause,
                   policy_id=e.policy_id, trip_id=e.trip_id, dispute_id=e.dispute_id, model_version=e.model_version,
                   feature_hash=e.feature_hash, rules_version=e.rules_version, score=e.score, band=e.band,
                   previous_premium=e.previous_premium, premium=e.premium,
                   change=None if e.previous_premium is None else e.premium - e.previous_premium,
                   currency=e.currency, cap_applied=e.cap_applied, clamp_applied=e.clamp_applied)


def _time(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)
