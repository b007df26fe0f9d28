"""Scoring on trip end, the pure half: which trips to score, and the events a scored trip produces.

No I/O. The scorer actor (actors/risk_scorer.py) loads trips and policies, asks the model, then calls
`score_events` here and persists what it returns. Event ids are uuid5 of (trip_id, model_version): a
replay, a retry or a repeated scoring of the same trip with the same model derives the same ids and so
writes nothing new (house habit 5). docs/SCORING.md has the whole flow.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal

import msgspec

from domain.batches import ShardOutput
from domain.events import PremiumForecast, PremiumQuoted, RiskScored
from domain.ids import derive_id, trip_event_id
from domain.pricing import PricingRules, Quote, quote
from domain.risk_assessment import RiskAssessment

DAY_MS = 86_400_000


class EndedTrip(msgspec.Struct, frozen=True, array_like=True):
    """A trip that ended and counts, as handed from persistence to the scorer. `end_ms` is device time;
    `seq` is the Kafka offset of the reading that ended it (the live-message sequence number)."""

    driver_id: str
    trip_id: uuid.UUID
    end_ms: int
    seq: int


class PolicyTerms(msgspec.Struct, frozen=True, kw_only=True):
    """The driver's active policy as pricing needs it. Money in `currency` units (annual premiums)."""

    policy_id: uuid.UUID
    base_premium: Decimal
    current_premium: Decimal
    per_km_rate: Decimal
    currency: str


class ScoringOutcome(msgspec.Struct, frozen=True):
    """What one scored trip produces: always a `RiskScored`; a `PremiumQuoted` only with an active policy."""

    risk_scored: RiskScored
    premium_quoted: PremiumQuoted | None = None


def risk_stream_id(driver_id: str) -> str:
    """The driver's risk stream. `:` cannot occur in a driver id, so it never collides with a trip stream
    (whose id is the driver id; the shard is its single writer, the scorer is this one's)."""
    return f"risk:{driver_id}"


def scoring_event_id(tag: str, trip_id: uuid.UUID, model_version: str) -> uuid.UUID:
    """Id of `risk_scored` / `premium_quoted` for one trip and model version."""
    return derive_id(tag, trip_id, model_version)


def window_start_ms(end_ms: int, window_days: float) -> int:
    """Trips that ended in (start, end_ms] feed the score: the window ends at the trip's end (device time)."""
    if window_days <= 0:
        raise ValueError(f"window_days must be > 0, got {window_days!r}")
    return end_ms - round(window_days * DAY_MS)


def is_newer(candidate: EndedTrip, held: EndedTrip | None) -> bool:
    """Per driver, the trip that ended last wins (ties: the later reading, then the trip id, so any merge
    order picks the same trip)."""
    if held is None:
        return True
    return (candidate.end_ms, candidate.seq, candidate.trip_id.bytes) > (held.end_ms, held.seq, held.trip_id.bytes)


def coalesce(pending: dict[str, EndedTrip], trips: Iterable[EndedTrip]) -> int:
    """Merge `trips` into `pending` (driver id → latest ended trip), in place; returns how many it replaced
    or added. Only each driver's latest trip is scored: its window contains the earlier ones."""
    changed = 0
    for trip in trips:
        if is_newer(trip, pending.get(trip.driver_id)):
            pending[trip.driver_id] = trip
            changed += 1
    return changed


def ended_trips(outputs: Sequence[ShardOutput]) -> list[EndedTrip]:
    """The trips that ended in a batch, with the offset of the reading that ended each (its `trip_ended`
    event's `seq`), latest per driver, sorted by driver id."""
    seq_of = {e.event_id: e.seq for out in outputs for e in out.events if e.event_type == "trip_ended"}
    latest: dict[str, EndedTrip] = {}
    for out in outputs:
        for summary in out.trips:
            seq = seq_of.get(trip_event_id("trip_ended", summary.trip_id), -1)
            coalesce(latest, (EndedTrip(summary.driver_id, summary.trip_id, summary.end_ms, seq),))
    return [latest[d] for d in sorted(latest)]


def policy_rules(policy: PolicyTerms, rules: PricingRules) -> PricingRules:
    """The tariff for one policy: its base premium (when > 0), per-km rate and currency over `rules`."""
    base = policy.base_premium if policy.base_premium > 0 else rules.base_annual_premium
    return msgspec.structs.replace(
        rules, base_annual_premium=base, per_km_rate=policy.per_km_rate, currency=policy.currency
    )


def quote_policy(score: float, annual_km: float, policy: PolicyTerms | None, rules: PricingRules) -> Quote:
    """The premium for `score` on `policy` (its tariff over `rules`, capped against its current premium), or
    on the bare tariff when the driver has no policy. The one pricing rule the scorer and the API share."""
    if policy is None:
        return quote(score, annual_km, previous_premium=None, rules=rules)
    previous = policy.current_premium if policy.current_premium > 0 else None
    return quote(score, annual_km, previous_premium=previous, rules=policy_rules(policy, rules))


def score_events(
    assessment: RiskAssessment,
    trip: EndedTrip,
    *,
    annual_km: float,
    policy: PolicyTerms | None,
    rules: PricingRules,
) -> ScoringOutcome:
    """The events of scoring `trip` with `assessment` (the driver's features over the window ending at the
    trip's end). Pure and deterministic. The premium is `domain.pricing.quote` for the assessment's score
    and `annual_km`, capped against the policy's current premium (guardrails: ±max_change_ratio, clamp).
    Raises ValueError for an assessment of another driver or a score outside 0–100."""
    if assessment.driver_id != trip.driver_id:
        raise ValueError(f"assessment of {assessment.driver_id!r} for a trip of {trip.driver_id!r}")
    scored = RiskScored(
        event_id=scoring_event_id("risk_scored", trip.trip_id, assessment.model_version),
        driver_id=trip.driver_id,
        trip_id=trip.trip_id,
        occurred_at_ms=trip.end_ms,
        model_version=assessment.model_version,
        feature_hash=assessment.feature_hash,
        score=assessment.score,
        band=assessment.band,
        rate=assessment.rate,
        model_rate=assessment.model_rate,
        prior_rate=assessment.prior_rate,
        credibility=assessment.credibility,
        top_factors=tuple(assessment.top_factors),
    )
    if policy is None:
        return ScoringOutcome(scored)
    q = quote_policy(assessment.score, annual_km, policy, rules)
    quoted = PremiumQuoted(
        event_id=scoring_event_id("premium_quoted", trip.trip_id, assessment.model_version),
        driver_id=trip.driver_id,
        trip_id=trip.trip_id,
        occurred_at_ms=trip.end_ms,
        policy_id=policy.policy_id,
        model_version=assessment.model_version,
        score=q.score,
        band=q.band,
        previous_premium=q.previous_premium,
        premium=q.premium,
        raw_premium=q.raw_premium,
        currency=q.currency,
        annual_km=q.annual_km,
        cap_applied=q.cap_applied,
        clamp_applied=q.clamp_applied,
        forecast=PremiumForecast(
            better_band=q.better_band,
            score_drop_to_better_band=q.score_drop_to_better_band,
            premium_at_better_band=q.premium_at_better_band,
            saving_at_better_band=q.saving_at_better_band,
        ),
    )
    return ScoringOutcome(scored, quoted)


def score_all(
    assessments: Sequence[RiskAssessment],
    trips: Mapping[str, EndedTrip],
    annual_km: Mapping[str, float],
    policies: Mapping[str, PolicyTerms],
    rules: PricingRules,
) -> list[ScoringOutcome]:
    """`score_events` for a batch, in the assessments' order; each assessment's driver must be in `trips`."""
    return [
        score_events(
            a, trips[a.driver_id], annual_km=annual_km[a.driver_id], policy=policies.get(a.driver_id), rules=rules
        )
        for a in assessments
    ]
