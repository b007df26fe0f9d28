"""The rules version: a stable label of every rule a score or premium depends on besides the model. Pure.

A decision is reproducible when its model version, its feature hash and this label are recorded with it: the
pricing terms (bands, base, per-km rate, cap, clamp), the detector and trip thresholds (what the trip summaries
and so the features count) and the scoring terms (window, credibility constant). `rules-` + 12 hex of sha256 over
their canonical JSON (msgspec encodes struct fields in declaration order, Decimals as strings), so the same rules
give the same label in every process, and any change of a threshold gives a new one.
"""

from __future__ import annotations

import hashlib

import msgspec

from domain.pricing import PricingRules
from domain.rules import TripRules

RULES_SPEC_VERSION = "rules/1"


class ScoringTerms(msgspec.Struct, frozen=True, kw_only=True):
    """The scoring terms outside the model artifact: the features' window (days) and the credibility constant
    k of Z = n / (n + k), n = trips in the window."""

    window_days: float
    k_trips: float


class RulesInForce(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a rules version labels, as one value (stored nowhere: the label is)."""

    pricing: PricingRules
    detectors: TripRules
    scoring: ScoringTerms

    @property
    def version(self) -> str:
        return rules_version(self)


def rules_version(rules: RulesInForce) -> str:
    """`rules-<12 hex>`: sha256 of RULES_SPEC_VERSION and the canonical JSON of `rules`."""
    text = RULES_SPEC_VERSION.encode() + b"\n" + msgspec.json.encode(rules)
    return "rules-" + hashlib.sha256(text).hexdigest()[:12]
