"""Disputes of a trip's episodes, the pure half: what may be disputed, what accepting removes, the events. No I/O.

A driver disputes one harsh episode (graded medium or high: a low-grade one counts nowhere) or one speeding
stretch of their own trip. One dispute per episode: its id is uuid5 of the episode's event id. Accepting it removes
the episode from the trip's summary (`apply_adjustment`, never below zero), and re-scores the driver over the
window of their latest score with the model in force; the premium is requoted against the current one within the
caps (`domain.scoring.quote_policy`, the one pricing rule). docs/SCORING.md, "Disputes and the premium ledger".
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

import msgspec

from domain.events import (
    DisputeDecided,
    DisputeOpened,
    DisputeRescored,
    DomainEvent,
    HarshAccelerationDetected,
    HarshBrakingDetected,
    HarshCorneringDetected,
    SpeedingDetected,
)
from domain.features import DriverFeatures
from domain.ids import derive_id
from domain.pricing import PricingRules
from domain.risk_assessment import RiskAssessment
from domain.scoring import PolicyTerms, quote_policy
from domain.trip_summary import TripSummary

REASON_MAX_CHARS = 2_000
NOTE_MAX_CHARS = 2_000
_HARSH_KIND = {
    HarshBrakingDetected: "braking",
    HarshAccelerationDetected: "acceleration",
    HarshCorneringDetected: "cornering",
}
DISPUTABLE_TYPES = ("harsh_braking", "harsh_acceleration", "harsh_cornering", "speeding")


class DisputeRefused(ValueError):
    """The request cannot be a dispute or a decision; the message says why (the API answers 4xx with it)."""


class DisputeConflict(DisputeRefused):
    """The dispute exists already, or is decided already (409)."""


def dispute_id(episode_id: uuid.UUID) -> uuid.UUID:
    """One dispute per episode: the same episode always names the same dispute."""
    return derive_id("dispute", episode_id)


def dispute_event_id(tag: str, dispute: uuid.UUID) -> uuid.UUID:
    """Id of a once-per-dispute event (`dispute_opened`, `dispute_decided`, `dispute_rescored`)."""
    return derive_id(tag, dispute)


def clean_text(text: str, what: str, max_chars: int) -> str:
    """`text` stripped; DisputeRefused when empty or longer than `max_chars`."""
    stripped = text.strip()
    if not stripped:
        raise DisputeRefused(f"{what} must not be empty")
    if len(stripped) > max_chars:
        raise DisputeRefused(f"{what} is {len(stripped)} characters long; at most {max_chars}")
    return stripped


def episode_adjustment(event: DomainEvent) -> dict[str, float]:
    """What accepting a dispute of `event` removes from its trip's summary, as field → amount. DisputeRefused for
    an episode that cannot be disputed (not harsh or speeding) or does not count (a low-grade harsh episode)."""
    kind = _HARSH_KIND.get(type(event))
    if kind is not None:
        grade = event.grade  # type: ignore[union-attr]
        if grade == "low":
            raise DisputeRefused("a low-grade episode does not count in the score; there is nothing to dispute")
        out = {f"harsh_{kind}_count": 1.0}
        if grade == "high":
            out[f"harsh_{kind}_high_count"] = 1.0
        return out
    if isinstance(event, SpeedingDetected):
        moderate, severe = event.moderate_s, event.severe_s
        if moderate == 0 and severe == 0:  # written before the band split: the whole stretch at its band
            moderate, severe = (event.duration_s, 0.0) if event.band == "moderate" else (0.0, event.duration_s)
        return {"speeding_moderate_s": moderate, "speeding_severe_s": severe}
    tag = type(event).__struct_config__.tag  # type: ignore[attr-defined]
    raise DisputeRefused(f"a {tag.removesuffix('_detected')} episode cannot be disputed; only "
                         f"{', '.join(DISPUTABLE_TYPES)}")


_INT_FIELDS = {name for name, kind in zip(TripSummary.__struct_fields__, TripSummary.__annotations__.values(),
                                            strict=True) if kind == "int"}


def apply_adjustment(summary: TripSummary, adjustment: Mapping[str, float]) -> TripSummary:
    """`summary` less `adjustment` (fields of TripSummary), each at least 0 and a high count at most its count.
    Pure. Unknown fields raise ValueError (an adjustment written by a newer version must not be half-applied)."""
    changes: dict[str, float | int] = {}
    for name, amount in adjustment.items():
        if name not in _INT_FIELDS and not isinstance(getattr(summary, name, None), float):
            raise ValueError(f"cannot adjust {name!r} of a trip summary")
        value = max(getattr(summary, name) - amount, 0)
        changes[name] = int(value) if name in _INT_FIELDS else float(value)
    adjusted = msgspec.structs.replace(summary, **changes)
    for kind in ("braking", "acceleration", "cornering"):
        count, high = getattr(adjusted, f"harsh_{kind}_count"), getattr(adjusted, f"harsh_{kind}_high_count")
        if high > count:
            adjusted = msgspec.structs.replace(adjusted, **{f"harsh_{kind}_high_count": count})
    return adjusted


def opened(*, driver_id: str, trip_id: uuid.UUID, episode: DomainEvent, reason: str, opened_by: str,
           at_ms: int) -> DisputeOpened:
    """The `dispute_opened` event of disputing `episode` (an event of the driver's trip `trip_id`)."""
    if episode.driver_id != driver_id or episode.trip_id != trip_id:
        raise DisputeRefused(f"episode {episode.event_id} is not an episode of trip {trip_id}")
    adjustment = episode_adjustment(episode)
    ident = dispute_id(episode.event_id)
    tag = type(episode).__struct_config__.tag  # type: ignore[attr-defined]
    return DisputeOpened(
        event_id=dispute_event_id("dispute_opened", ident), driver_id=driver_id, trip_id=trip_id, occurred_at_ms=at_ms,
        dispute_id=ident, episode_id=episode.event_id, episode_type=tag.removesuffix("_detected"),
        reason=clean_text(reason, "reason", REASON_MAX_CHARS), opened_by=opened_by, adjustment=adjustment,
    )


def decided(dispute: DisputeOpened, *, accept: bool, note: str, decided_by: str, at_ms: int) -> DisputeDecided:
    """The `dispute_decided` event of an admin's decision on an open dispute."""
    return DisputeDecided(
        event_id=dispute_event_id("dispute_decided", dispute.dispute_id), driver_id=dispute.driver_id,
        trip_id=dispute.trip_id, occurred_at_ms=at_ms, dispute_id=dispute.dispute_id,
        decision="accepted" if accept else "rejected", note=clean_text(note, "note", NOTE_MAX_CHARS),
        decided_by=decided_by,
    )


def rescored(dispute: DisputeOpened, *, assessment: RiskAssessment, features: DriverFeatures, window_end_ms: int,
             policy: PolicyTerms | None, rules: PricingRules, rules_version: str, at_ms: int) -> DisputeRescored:
    """The `dispute_rescored` event: the assessment of the adjusted window and, with a policy, its premium
    requoted against the policy's current premium (±max_change_ratio, then the clamp). Pure."""
    if assessment.driver_id != dispute.driver_id:
        raise ValueError(f"assessment of {assessment.driver_id!r} for a dispute of {dispute.driver_id!r}")
    premium: dict[str, object] = {}
    if policy is not None:
        q = quote_policy(assessment.score, features.annual_km, policy, rules)
        premium = {"policy_id": policy.policy_id, "base_premium": q.base_premium, "per_km_rate": q.per_km_rate,
                   "previous_premium": q.previous_premium, "premium": q.premium, "raw_premium": q.raw_premium,
                   "currency": q.currency, "cap_applied": q.cap_applied, "clamp_applied": q.clamp_applied}
    return DisputeRescored(
        event_id=dispute_event_id("dispute_rescored", dispute.dispute_id), driver_id=dispute.driver_id,
        trip_id=dispute.trip_id, occurred_at_ms=at_ms, dispute_id=dispute.dispute_id, window_end_ms=window_end_ms,
        model_version=assessment.model_version, feature_hash=assessment.feature_hash, rules_version=rules_version,
        features=tuple(features.to_vector().tolist()), score=assessment.score, band=assessment.band,
        rate=assessment.rate, model_rate=assessment.model_rate, prior_rate=assessment.prior_rate,
        credibility=assessment.credibility, top_factors=tuple(assessment.top_factors),
        annual_km=features.annual_km, **premium,  # type: ignore[arg-type]
    )
