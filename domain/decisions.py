"""A past score-and-premium decision as recorded in the log, and its recomputation. Pure (issue 16 item 5).

A decision is a `risk_scored` (with the `premium_quoted` that follows it) or a `dispute_rescored`. Both record
the model's input features, the model version, the feature hash and the rules version, and the quote its tariff
and previous premium: so `requote` prices the recorded score again with given rules, step by step, and `compare`
says whether a recomputation gives the same numbers.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

import msgspec
import numpy as np

from domain.events import DisputeRescored, PremiumForecast, PremiumQuoted, RiskScored
from domain.features import FEATURE_NAMES, feature_hash
from domain.pricing import PricingRules, Quote, quote


class Decision(msgspec.Struct, frozen=True, kw_only=True):
    """What was decided and from what. `cause`: trip | dispute. Premium fields None without a policy (or when the
    quote predates recorded tariffs: base_premium None)."""

    driver_id: str
    cause: str
    event_id: uuid.UUID
    occurred_at_ms: int
    trip_id: uuid.UUID | None
    dispute_id: uuid.UUID | None
    model_version: str
    feature_hash: str
    rules_version: str
    features: tuple[float, ...]
    score: float
    band: str
    credibility: float
    annual_km: float | None = None
    base_premium: Decimal | None = None
    per_km_rate: Decimal | None = None
    currency: str | None = None
    previous_premium: Decimal | None = None
    premium: Decimal | None = None
    raw_premium: Decimal | None = None
    cap_applied: bool = False
    clamp_applied: bool = False


def decision_of(scored: RiskScored | DisputeRescored, quoted: PremiumQuoted | None = None) -> Decision:
    """The decision of a stored scoring event (and, for a trip, the quote of the same trip and model version)."""
    common = {"driver_id": scored.driver_id, "event_id": scored.event_id, "occurred_at_ms": scored.occurred_at_ms,
              "trip_id": scored.trip_id, "model_version": scored.model_version, "feature_hash": scored.feature_hash,
              "rules_version": scored.rules_version, "features": tuple(scored.features), "score": scored.score,
              "band": scored.band, "credibility": scored.credibility}
    if isinstance(scored, DisputeRescored):
        return Decision(**common, cause="dispute", dispute_id=scored.dispute_id,
                        annual_km=scored.annual_km if scored.premium is not None else None,
                        base_premium=scored.base_premium, per_km_rate=scored.per_km_rate, currency=scored.currency,
                        previous_premium=scored.previous_premium, premium=scored.premium,
                        raw_premium=scored.raw_premium, cap_applied=scored.cap_applied,
                        clamp_applied=scored.clamp_applied)
    if quoted is None or (quoted.trip_id, quoted.model_version) != (scored.trip_id, scored.model_version):
        return Decision(**common, cause="trip", dispute_id=None)
    return Decision(**common, cause="trip", dispute_id=None, annual_km=quoted.annual_km,
                    base_premium=quoted.base_premium, per_km_rate=quoted.per_km_rate, currency=quoted.currency,
                    previous_premium=quoted.previous_premium, premium=quoted.premium, raw_premium=quoted.raw_premium,
                    cap_applied=quoted.cap_applied, clamp_applied=quoted.clamp_applied)


def features_by_name(decision: Decision) -> dict[str, float]:
    return dict(zip(FEATURE_NAMES, decision.features, strict=True)) if decision.features else {}


def recorded_hash_holds(decision: Decision) -> bool | None:
    """Whether the recorded features hash to the recorded feature hash (None: no features recorded)."""
    if not decision.features:
        return None
    return feature_hash(np.asarray(decision.features, dtype=np.float64)) == decision.feature_hash


def requote(decision: Decision, rules: PricingRules, score: float | None = None) -> Quote | None:
    """The decision's premium priced again with `rules` and its recorded tariff, previous premium and annual km
    (and `score`, default the recorded one). None when the decision has no premium or no recorded tariff."""
    if decision.premium is None or decision.base_premium is None or decision.annual_km is None:
        return None
    tariff = msgspec.structs.replace(rules, base_annual_premium=decision.base_premium,
                                     per_km_rate=decision.per_km_rate if decision.per_km_rate is not None
                                     else rules.per_km_rate, currency=decision.currency or rules.currency)
    return quote(decision.score if score is None else score, decision.annual_km,
                 previous_premium=decision.previous_premium, rules=tariff)


def rescore_as_quote(event: DisputeRescored, rules: PricingRules) -> PremiumQuoted | None:
    """An accepted dispute's re-score in the shape of the quote it is: the premium, previous premium, cap and clamp
    as decided, the forecast to the better band priced from the same inputs. None without a premium. Lets the API's
    quote show the decision in force whether a trip or a dispute made it."""
    decision = decision_of(event)
    q = requote(decision, rules)
    if q is None or event.policy_id is None or event.premium is None or event.raw_premium is None:
        return None
    return PremiumQuoted(
        event_id=event.event_id, driver_id=event.driver_id, trip_id=event.trip_id, occurred_at_ms=event.occurred_at_ms,
        policy_id=event.policy_id, model_version=event.model_version, score=event.score, band=event.band,
        previous_premium=event.previous_premium, premium=event.premium, raw_premium=event.raw_premium,
        currency=event.currency or q.currency, annual_km=event.annual_km, cap_applied=event.cap_applied,
        clamp_applied=event.clamp_applied,
        forecast=PremiumForecast(better_band=q.better_band, score_drop_to_better_band=q.score_drop_to_better_band,
                                 premium_at_better_band=q.premium_at_better_band,
                                 saving_at_better_band=q.saving_at_better_band),
        base_premium=event.base_premium, per_km_rate=event.per_km_rate, rules_version=event.rules_version)
