"""Scoring on trip end, the pure half: which trips a round scores, their windows, and the events they produce.

No I/O. The scoring round (usecases/scoring_round.py) loads each driver's unscored trips, their windows and
policies, asks the model, then calls `score_driver_trips` here and persists what it returns. Every trip end is
scored once, in end order per driver (`trip_order`), and the premium chains through them: the inputs of a score
are fixed by the log, so a replay or a crash gives the same history. Event ids are uuid5 of (trip_id,
model_version): a repeated scoring derives the same ids and writes nothing new (house habit 5).
docs/SCORING.md has the whole flow.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from decimal import Decimal

import msgspec

from domain.batches import ShardOutput
from domain.events import PremiumForecast, PremiumQuoted, RiskScored
from domain.features import DriverFeatures, driver_features
from domain.ids import derive_id, trip_event_id
from domain.pricing import PricingRules, Quote, quote
from domain.risk_assessment import RiskAssessment
from domain.trip_summary import MILEAGE_ONLY_FLAG, TripSummary

DAY_MS = 86_400_000
UNKNOWN_SEQ = -1  # an EndedTrip whose ending reading's offset is not known (yet): the round looks it up


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

    def events(self) -> list[RiskScored | PremiumQuoted]:
        """In stream order: the score, then the quote."""
        return [self.risk_scored] if self.premium_quoted is None else [self.risk_scored, self.premium_quoted]


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


def trip_order(trip: EndedTrip) -> tuple[int, uuid.UUID]:
    """A driver's trips are scored in this order: end time (device), then trip id (PostgreSQL's uuid order:
    bytewise, the same as Python's). Ties in end time are real (a gap-closed trip and the next one)."""
    return (trip.end_ms, trip.trip_id)


def window_trips(trips: Sequence[TripSummary], end_ms: int, window_days: float) -> list[TripSummary]:
    """The trips of the scoring window ending at `end_ms`: those that ended in (window start, end_ms], in
    the given order. `trips` may span several windows of one driver (one load for all its unscored trips)."""
    start_ms = window_start_ms(end_ms, window_days)
    return [t for t in trips if start_ms < t.end_ms <= end_ms]


def scored_mileage_only(window: Sequence[TripSummary]) -> bool:
    """A score over this window uses mileage-only inputs (docs/SCORING.md): a trip in it was folded from readings
    whose positions the pipeline stripped."""
    return any(MILEAGE_ONLY_FLAG in t.quality_flags for t in window)


def window_features(trips: Sequence[TripSummary], end_ms: int, window_days: float) -> DriverFeatures:
    """The features a score at `end_ms` uses: those of its window's trips (`window_trips`). The scorer and the
    drift monitor both call this, so the inputs drift compares are the ones the model saw."""
    return driver_features(window_trips(trips, end_ms, window_days), window_days)


def ended_trips(outputs: Sequence[ShardOutput]) -> list[EndedTrip]:
    """Every trip that ended in a batch, with the offset of the reading that ended it (its `trip_ended`
    event's `seq`, UNKNOWN_SEQ when absent), sorted by driver id then `trip_order`; each once."""
    seq_of = {e.event_id: e.seq for out in outputs for e in out.events if e.event_type == "trip_ended"}
    trips = {
        summary.trip_id: EndedTrip(
            summary.driver_id,
            summary.trip_id,
            summary.end_ms,
            seq_of.get(trip_event_id("trip_ended", summary.trip_id), UNKNOWN_SEQ),
        )
        for out in outputs
        for summary in out.trips
    }
    return sorted(trips.values(), key=lambda t: (t.driver_id, *trip_order(t)))


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
    features: Sequence[float] = (),
    rules_version: str = "",
) -> ScoringOutcome:
    """The events of scoring `trip` with `assessment` (the driver's features over the window ending at the
    trip's end, recorded as `features` with the `rules_version` in force: issue 16 item 5). Pure and
    deterministic. The premium is `domain.pricing.quote` for the assessment's score
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
        rules_version=rules_version,
        features=tuple(float(x) for x in features),
        mileage_only=assessment.mileage_only,
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
        base_premium=q.base_premium,
        per_km_rate=q.per_km_rate,
        rules_version=rules_version,
    )
    return ScoringOutcome(scored, quoted)


def score_driver_trips(
    scored: Sequence[tuple[EndedTrip, RiskAssessment, float]],
    policy: PolicyTerms | None,
    rules: PricingRules,
    *,
    features: Sequence[Sequence[float]] | None = None,
    rules_version: str = "",
) -> list[ScoringOutcome]:
    """One driver's trips, each with its assessment and annual km, in `trip_order`: their outcomes, the premium
    chained through them (trip N+1 is capped against trip N's premium; the first against the policy's current
    premium). `features`, when given, are each trip's model input (recorded in its events). Pure. Raises
    ValueError for trips of several drivers or out of order."""
    if len({trip.driver_id for trip, _, _ in scored}) > 1:
        raise ValueError("score_driver_trips takes one driver's trips")
    if [trip_order(t) for t, _, _ in scored] != sorted(trip_order(t) for t, _, _ in scored):
        raise ValueError("score_driver_trips takes trips in end order")
    if features is not None and len(features) != len(scored):
        raise ValueError(f"{len(features)} feature vectors for {len(scored)} trips")
    outcomes = []
    for i, (trip, assessment, annual_km) in enumerate(scored):
        outcome = score_events(assessment, trip, annual_km=annual_km, policy=policy, rules=rules,
                               features=features[i] if features is not None else (), rules_version=rules_version)
        if policy is not None and outcome.premium_quoted is not None:
            policy = msgspec.structs.replace(policy, current_premium=outcome.premium_quoted.premium)
        outcomes.append(outcome)
    return outcomes
