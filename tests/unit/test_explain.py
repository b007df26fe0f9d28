"""`autoins explain`'s comparison (usecases/explain.py, domain/decisions.py) over a fake artifact store: a decision
recomputed with its model and rules is reproduced; a gone artifact, other rules or a changed number is said."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import msgspec
import numpy as np
import pytest

from autoins.explain import BadArgument, parse_time
from config.rules import rules_in_force
from config.settings import Settings
from domain.decisions import decision_of, requote
from domain.features import driver_features, feature_hash
from domain.pricing import PricingRules, band_for
from domain.risk_assessment import RiskAssessment, ScoreRequest
from domain.scoring import EndedTrip, PolicyTerms, score_driver_trips
from domain.trip_summary import TripSummary
from usecases.explain import ModelGone, explain

RULES = rules_in_force(Settings())
POLICY = PolicyTerms(policy_id=uuid.UUID(int=1), base_premium=Decimal("600.00"), current_premium=Decimal("600.00"),
                     per_km_rate=Decimal("0.02"), currency="EUR")


class Models:
    """Score = 10 × trips; `gone` versions have no artifact; `drift` adds to every score (a changed model)."""

    def __init__(self, gone=(), drift=0.0) -> None:
        self.gone, self.drift = set(gone), drift

    def assess(self, model_version: str, request: ScoreRequest) -> RiskAssessment:
        if model_version in self.gone:
            raise ModelGone(f"model artifact {model_version} is no longer available")
        score = min(100.0, 10.0 * request.features[0] + self.drift)
        return RiskAssessment(driver_id=request.driver_id, model_version=model_version,
                              feature_hash=feature_hash(np.asarray(request.features)), score=score,
                              band=band_for(score).name, rate=0.1, model_rate=0.1, prior_rate=0.1, credibility=0.5)


def _decision(trips: int = 3):
    summaries = [TripSummary(trip_id=uuid.UUID(int=i + 1), driver_id="d1", start_ms=i * 10_000,
                             end_ms=i * 10_000 + 5_000, distance_m=9_000.0, duration_s=900.0, avg_speed_kmh=36.0,
                             max_speed_kmh=70.0) for i in range(trips)]
    features = driver_features(summaries, 365)
    vector = tuple(features.to_vector().tolist())
    assessment = Models().assess("freq-000000000001", ScoreRequest(driver_id="d1", features=vector))
    trip = EndedTrip("d1", summaries[-1].trip_id, summaries[-1].end_ms, 0)
    [outcome] = score_driver_trips([(trip, assessment, features.annual_km)], POLICY, RULES.pricing,
                                   features=[vector], rules_version=RULES.version)
    return decision_of(outcome.risk_scored, outcome.premium_quoted)


def test_a_decision_recomputed_with_its_model_and_rules_is_reproduced():
    x = explain(_decision(), Models(), RULES)
    assert (x.hash_holds, x.score_same, x.premium_same, x.rules_same, x.reproduced) == (True, True, True, True, True)
    assert x.requoted is not None and x.requoted.premium == x.decision.premium


def test_a_gone_artifact_is_said_and_the_decision_is_not_reproduced():
    x = explain(_decision(), Models(gone={"freq-000000000001"}), RULES)
    assert x.model_problem == "model artifact freq-000000000001 is no longer available"
    assert x.score_same is None and not x.reproduced and x.premium_same


def test_a_changed_model_or_other_rules_are_not_the_same_decision():
    assert explain(_decision(), Models(drift=5.0), RULES).score_same is False
    cheaper = msgspec.structs.replace(RULES, pricing=PricingRules(max_change_ratio=Decimal("0.05")))
    x = explain(_decision(), Models(), cheaper)
    assert not x.rules_same and not x.reproduced


def test_tampered_features_no_longer_hash_to_the_recorded_hash():
    decision = _decision()
    tampered = msgspec.structs.replace(decision, features=(decision.features[0] + 1, *decision.features[1:]))
    assert explain(tampered, Models(), RULES).hash_holds is False


def test_a_decision_without_a_premium_is_not_requoted():
    decision = msgspec.structs.replace(_decision(), premium=None)
    assert requote(decision, RULES.pricing) is None


def test_times_are_iso_8601_and_utc_unless_zoned():
    now = datetime(2026, 12, 5, 12, tzinfo=UTC)
    assert parse_time(None, now) == now
    assert parse_time("2026-12-01", now) == datetime(2026, 12, 1, tzinfo=UTC)
    assert parse_time("2026-12-01T10:00:00Z", now) == datetime(2026, 12, 1, 10, tzinfo=UTC)
    with pytest.raises(BadArgument, match="is not a time"):
        parse_time("last tuesday", now)
