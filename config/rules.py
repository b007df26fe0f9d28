"""The domain's rules as these settings configure them: built here once, for every entrypoint."""

from __future__ import annotations

import msgspec

from config.settings import Settings
from domain.batch_sizing import BatchSizingRules
from domain.pricing import DEFAULT_RULES, PricingRules
from domain.rules import TripRules, ValidationRules
from domain.rules_version import RulesInForce, ScoringTerms


def validation_rules(settings: Settings) -> ValidationRules:
    """What the API and the pipeline accept: the clock skew and the retention of these settings."""
    return ValidationRules(max_future_skew_s=settings.max_future_skew_s, retention_months=settings.retention_months)


def ingest_validation_rules(settings: Settings) -> ValidationRules:
    """The public ingest route's: the pipeline's rules plus the backdating window (docs/SECURITY.md §6). The admin
    import uses `validation_rules`: only retention limits its past."""
    return msgspec.structs.replace(validation_rules(settings), max_backdate_s=settings.ingest_max_backdate_s)


def batch_sizing_rules(settings: Settings) -> BatchSizingRules:
    """The consumer's adaptive batching bounds; the caught-up size never exceeds the largest batch."""
    return BatchSizingRules(
        min_messages=min(settings.consumer_min_batch_size, settings.consumer_batch_size),
        max_messages=settings.consumer_batch_size,
        max_linger_s=settings.consumer_linger_ms / 1000,
        idle_wait_s=settings.consumer_idle_wait_ms / 1000,
    )


def rules_in_force(settings: Settings, pricing: PricingRules = DEFAULT_RULES,
                   detectors: TripRules | None = None) -> RulesInForce:
    """The rules a score and premium depend on besides the model: the pricing terms, the detector thresholds the
    shards run (TripRules' defaults, as actors.common builds them) and the scoring terms of these settings. Its
    `version` is recorded with every decision (domain.rules_version)."""
    return RulesInForce(pricing=pricing, detectors=detectors if detectors is not None else TripRules(),
                        scoring=ScoringTerms(window_days=float(settings.scoring_window_days),
                                             k_trips=float(settings.credibility_k_trips)))
